"""
Stories about the lab's world: a few people, a few events, a little state so that later sentences agree.

A story draws fresh people, places, things and numbers each time, so the text has real entropy (a
small model cannot memorise it) and real structure to learn: grammar, the facts, the causal rules,
counting (had 7, gave 3, now has 4) and where things are (put in the box, later taken from the box).
"""

from data.lab.world import (
    ACTIVITIES,
    ANIMALS,
    CATEGORIES,
    COLORS,
    N_NAMES,
    NP,
    PLACES,
    RULES,
    Clause,
    a,
    clause,
    draw,
    name,
    num,
    rule_clauses,
    the,
)


def ev_go(rng, w, people, st):
    p, place = rng.choice(people), rng.choice(list(PLACES))
    out = [clause(name(p), "go", ("dest", the(place)))]
    if place in w.sells:  # at a shop: buy what that shop sells (a fact of the world)
        f, n = rng.choice(w.sells[place]), rng.randint(2, 9)
        st["has"][p, f] = st["has"].get((p, f), 0) + n
        out.append(clause(name(p), "buy", ("obj", num(f, n))))
    return out


def ev_give(rng, w, people, st):
    held = [(pf, n) for pf, n in st["has"].items() if n >= 2]
    if not held or len(people) < 2:
        return ev_go(rng, w, people, st)
    (p, f), n = rng.choice(held)
    q, m = rng.choice([x for x in people if x != p]), rng.randint(1, n - 1)
    st["has"][p, f] = n - m
    st["has"][q, f] = st["has"].get((q, f), 0) + m
    out = [clause(name(p), "give", ("obj", num(f, m)), ("to", name(q)))]
    if rng.random() < 0.6:
        who, k = (p, n - m) if rng.random() < 0.5 else (q, st["has"][q, f])
        out.append(clause(name(who), "have", ("obj", num(f, k)), tense="pres", adv="now"))
    return out


def ev_rule(rng, w, people, st):
    i = rng.randrange(len(RULES))
    cause, effect = rule_clauses(i, rng.choice(people), draw(rng, RULES[i][2]))
    r = rng.random()
    if r < 0.4:
        return [cause, effect]
    return [("so", cause, effect)] if r < 0.7 else [("because", effect, cause)]


def ev_animal(rng, w, people, st):
    x = rng.choice(list(ANIMALS))
    return [clause(name(rng.choice(people)), "see", ("obj", a(x)), ("loc", the(w.home[x]))),
            rng.choice(w.animal_facts(x))]


def ev_put(rng, w, people, st):
    thing, box = rng.choice(CATEGORIES["valuable"] + CATEGORIES["toy"]), rng.choice(CATEGORIES["container"])
    st["put"][thing] = box
    return [clause(name(rng.choice(people)), "put", ("obj", the(thing)), ("loc", the(box)))]


def ev_take(rng, w, people, st):
    if not st["put"]:
        return ev_put(rng, w, people, st)
    thing = rng.choice(list(st["put"]))
    box = st["put"].pop(thing)
    return [clause(name(rng.choice(people)), "take", ("obj", the(thing)), ("src", the(box)), adv="later")]


def ev_activity(rng, w, people, st):
    verb, cat = rng.choice(ACTIVITIES)
    args = [("obj", (the if rng.random() < 0.7 else a)(draw(rng, cat)))] if cat else []
    if rng.random() < 0.4:
        args.append(("loc", the(rng.choice(list(PLACES)))))
    return [clause(name(rng.choice(people)), verb, *args, adv="then" if rng.random() < 0.2 else None)]


def ev_meet(rng, w, people, st):
    if len(people) < 2:
        return ev_activity(rng, w, people, st)
    p, q = rng.sample(people, 2)
    return [clause(name(p), "meet", ("obj", name(q)), ("loc", the(rng.choice(list(PLACES)))))]


def ev_describe(rng, w, people, st):
    if rng.random() < 0.5:
        return [clause(the(draw(rng, rng.choice(["toy", "clothes", "container"]))), "be", ("adj", rng.choice(COLORS)))]
    return [clause(name(rng.choice(people)), "be", ("adj", rng.choice(["happy", "sad", "tired", "hungry", "bored"])))]


EVENTS = [ev_go, ev_give, ev_rule, ev_animal, ev_put, ev_take, ev_activity, ev_meet, ev_describe]
EVENT_WEIGHTS = [3, 2, 4, 2, 1, 1, 3, 1, 1]


def placeless_activity(rng, p):
    """Person p does something everyday to a thing that is not a place (so it says nothing about where)."""
    verb, cat = rng.choice([(v, c) for v, c in ACTIVITIES if c and not set(CATEGORIES[c]) & set(PLACES)])
    return clause(name(p), verb, ("obj", the(draw(rng, cat))))


def story(rng, w, people=None, n_events=None):
    """A short narrative: a list of sentences (a Clause, or (conjunction, clause, clause))."""
    if people is None:
        people = rng.sample(range(N_NAMES), rng.choice((1, 2, 2, 3)))
    st = {"has": {}, "put": {}}
    out = []
    for ev in rng.choices(EVENTS, EVENT_WEIGHTS, k=n_events or rng.randint(3, 7)):
        out += ev(rng, w, people, st)
    return pronominalize(rng, out)


def _pron(np):
    return NP("pron", np.ref, None, None, None)


def pronominalize(rng, sents):
    """Say 'she'/'he' for the person who was also the subject just before (half of the time)."""
    out, prev = [], None
    for s in sents:
        if isinstance(s, Clause):
            subj = s.subj
            if subj == prev and subj is not None and subj.kind == "name" and rng.random() < 0.5:
                s = s._replace(subj=_pron(subj))
        else:
            conj, c1, c2 = s
            subj = c1.subj
            if c2.subj == subj and subj is not None and subj.kind == "name" and rng.random() < 0.6:
                s = (conj, c1, c2._replace(subj=_pron(subj)))
        prev = subj
        out.append(s)
    return out
