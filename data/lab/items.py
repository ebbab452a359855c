"""
Benchmark items about the lab's world, language-neutral (prepare.py renders them in every language): the
right answer is a fact of the world, a wrong one another real fact, and no surface cue (length, words
repeated from the context) tells them apart.
"""

from data.lab.stories import ev_activity, placeless_activity, pronominalize
from data.lab.world import (
    ANIMALS,
    CATEGORIES,
    COUNT_FOODS,
    N_NAMES,
    NP,
    PLACES,
    RULES,
    SHOPS,
    WHAT,
    WHERE,
    WHO,
    a,
    clause,
    draw,
    generic,
    name,
    num,
    number,
    rule_clauses,
    rule_key,
    the,
)


def passage(rng):
    """Four people each go somewhere and buy something; one gives a thing to another (Belebele/XQuAD)."""
    people = rng.sample(range(N_NAMES), 4)
    info = dict(people=people, places=rng.sample(list(PLACES), 4), foods=rng.sample(list(COUNT_FOODS), 4),
                nums=rng.sample(range(2, 10), 4), giver=rng.randrange(4), gift=rng.choice(CATEGORIES["toy"]))
    info["taker"] = rng.choice([i for i in range(4) if i != info["giver"]])
    sents = []
    for i in rng.sample(range(4), 4):
        go = clause(name(people[i]), "go", ("dest", the(info["places"][i])))
        buy = clause(name(people[i]), "buy", ("obj", num(info["foods"][i], info["nums"][i])))
        sents += [go, buy] if rng.random() < 0.5 else [buy, go]
    give = clause(name(people[info["giver"]]), "give", ("obj", the(info["gift"])), ("to", name(people[info["taker"]])))
    sents.insert(rng.randrange(len(sents) + 1), give)
    return sents, info


QUESTION_TYPES = ["where", "what", "howmany", "who", "giver"]


def passage_question(info, qtype, i):
    """Question of a type about person i -> (question, the four options, index of the answer, answer's role)."""
    people, p = info["people"], name(info["people"][i])
    if qtype == "where":
        return clause(p, "go", ("dest", WHERE), q="wh"), [the(x) for x in info["places"]], i, "dest"
    if qtype == "what":
        return clause(p, "buy", ("obj", WHAT), q="wh"), [generic(x) for x in info["foods"]], i, "obj"
    if qtype == "howmany":
        f = info["foods"][i]
        return (clause(p, "buy", ("obj", NP("noun", f, "howmany", None, None)), q="wh"),
                [number(k) for k in info["nums"]], i, "num")
    if qtype == "who":
        return clause(WHO, "go", ("dest", the(info["places"][i])), q="wh"), [name(x) for x in people], i, "subj"
    gift, taker = the(info["gift"]), name(people[info["taker"]])
    return clause(WHO, "give", ("obj", gift), ("to", taker), q="wh"), [name(x) for x in people], info["giver"], "subj"


def nli_item(rng, w, label):
    """One person sees something and does something that says nothing about places; the question asks
    whether they were at some animal's home (never named in the premise, whatever the label: no overlap
    cue). 0 yes: they saw the animal that lives there (the world repeats where each animal lives);
    2 no: they saw an animal that lives elsewhere; 1 maybe: they saw a thing, which says nothing about where."""
    p = rng.randrange(N_NAMES)
    x = rng.choice(list(ANIMALS))
    seen = x if label != 1 else rng.choice(CATEGORIES["gift"] + CATEGORIES["toy"])
    where = w.home[x] if label != 2 else rng.choice([w.home[y] for y in ANIMALS if w.home[y] != w.home[x]])
    sents = [clause(name(p), "see", ("obj", a(seen))), placeless_activity(rng, p)]
    rng.shuffle(sents)
    return sents, clause(name(p), "be", ("loc", the(where)), q="yn")


def _rule_pair(side, p, x, i):
    """(premise, alternative) of rule i for person p and thing x: side 1 asks for the effect, 0 the cause."""
    pair = rule_clauses(i, p, x)
    return pair[1 - side], pair[side]


def _other_rules(rng, side, i, x):
    """Every rule that may give rule i's wrong alternative, with its thing (x itself if it fits)."""
    for j in rng.sample(range(len(RULES)), len(RULES)):
        if rule_key(j, side) != rule_key(i, side) and rule_key(j, 1 - side) != rule_key(i, 1 - side):
            cat = RULES[j][2]
            yield j, x if cat and x in CATEGORIES[cat] else draw(rng, cat)


def concepts(c):
    """What a clause mentions, as the words a language repeats when it mentions it again, for three
    kinds of language: English (the concept, 'the', a preposition per role), one with separate particles
    (the concept, a particle per role) and one with case endings (the concept in its role)."""
    english, particles, cased = {c.verb}, {c.verb}, {c.verb}
    for role, x in (("subj", c.subj), *c.args):
        if isinstance(x, NP):
            english.add((x.kind, x.ref))
            particles.add((x.kind, x.ref))
            cased.add((x.kind, x.ref, role))
            if x.det:
                english.add(x.det)
            if role not in ("subj", "obj"):
                english.add(role)
                particles.add(role)
        elif x is not None:
            english.add(x)
            particles.add(x)
            cased.add(x)
    return english, particles, cased


def _repeats(context, clause):
    """How many words of the context a clause repeats, in each kind of language of concepts()."""
    return [len(a & b) for a, b in zip(context, concepts(clause))]


def _context(clauses):
    return [set().union(*parts) for parts in zip(*map(concepts, clauses))]


def _pick(drift, candidates):
    """The candidate whose cues (right minus wrong) bring the running sums in drift closest to zero
    (ties: the shorter length gap); drift is updated. Over many items the right choice then repeats
    the context no more often than the wrong one, in every kind of language."""
    best = min(candidates, key=lambda c: (sum(abs(d + g) for d, g in zip(drift, c[0])), c[1]))
    drift[:] = [d + g for d, g in zip(drift, best[0])]
    return best[2]


def copa_item(rng, conj, p=None, length=len, before=(), drift=None):
    """(premise, right, wrong) for conj 'so' (the effect is asked) or 'because' (the cause). The wrong
    alternative is another rule's, for the same person; it repeats the context (the premise and the
    clauses `before` it) as much as the right one, on balance (see _pick), and is about as long."""
    side = 1 if conj == "so" else 0
    i = rng.randrange(len(RULES))
    p = rng.randrange(N_NAMES) if p is None else p
    x = draw(rng, RULES[i][2])
    premise, right = _rule_pair(side, p, x, i)
    context = _context([premise, *before])
    have, size = _repeats(context, right), length(right)
    candidates = []
    for j, y in _other_rules(rng, side, i, x):
        wrong = _rule_pair(side, p, y, j)[1]
        if wrong != right:
            gaps = [a - b for a, b in zip(have, _repeats(context, wrong))]
            candidates.append((gaps, abs(length(wrong) - size), wrong))
    return premise, right, _pick([0, 0, 0] if drift is None else drift, candidates)


def copa_pair(rng, conj, drift=None):
    """Two items that share their two alternatives, each right for one premise (as in Balanced COPA),
    so that nothing in an alternative alone (length, words) tells whether it is right:
    ((premise 1, right 1, wrong 1), (premise 2, right 2 = wrong 1, wrong 2 = right 1))."""
    side = 1 if conj == "so" else 0
    i = rng.randrange(len(RULES))
    p = rng.randrange(N_NAMES)
    x = draw(rng, RULES[i][2])
    premise1, alt1 = _rule_pair(side, p, x, i)
    c1 = _context([premise1])
    candidates = []
    for j, y in _other_rules(rng, side, i, x):
        premise2, alt2 = _rule_pair(side, p, y, j)
        if alt2 != alt1 and premise2 != premise1:
            c2 = _context([premise2])
            gaps = [a - b + c - d for a, b, c, d in zip(_repeats(c1, alt1), _repeats(c1, alt2),
                                                       _repeats(c2, alt2), _repeats(c2, alt1))]
            candidates.append((gaps, 0, (premise2, alt2)))
    premise2, alt2 = _pick([0, 0, 0] if drift is None else drift, candidates)
    return (premise1, alt1, alt2), (premise2, alt2, alt1)


def cloze_item(rng, w, length=len, drift=None):
    """(story, right ending, wrong ending); both endings mention the same people and things. Every kind
    is decided by what the world repeats: a causal rule, what a shop sells, a fact about an animal."""
    kind = rng.choice(["rule", "shop", "animal"])
    p = rng.randrange(N_NAMES)
    if kind == "rule":
        intro = [clause(name(p), "go", ("dest", the(rng.choice(list(PLACES)))))] + ev_activity(rng, w, [p], {})
        premise, right, wrong = copa_item(rng, "so", p, length, intro, drift)
        return pronominalize(rng, intro + [premise]), right, wrong
    intro = [placeless_activity(rng, p)]
    if kind == "shop":  # at a shop one buys what that shop sells; the wrong food is sold by another shop
        shop, n = rng.choice(SHOPS), rng.randint(2, 9)
        foods = rng.choice(w.sells[shop]), rng.choice([f for f in COUNT_FOODS if w.shop[f] != shop])
        end = [clause(name(p), "buy", ("obj", num(f, n)), adv="then") for f in foods]
        return pronominalize(rng, intro + [clause(name(p), "go", ("dest", the(shop)))]), end[0], end[1]
    # an animal seen, then a fact about it; the wrong value is another animal's (so it is a real home or diet)
    x = rng.choice(list(ANIMALS))
    value, verb, role, np = rng.choice([(w.home, "live", "loc", the), (w.diet, "eat", "obj", generic)])
    other = rng.choice([y for y in ANIMALS if value[y] != value[x] and value[y] != x])
    end = [clause(generic(x), verb, (role, np(value[y])), tense="pres") for y in (x, other)]
    return pronominalize(rng, intro + [clause(name(p), "see", ("obj", a(x)))]), end[0], end[1]


def fact_passage(rng, w):
    """Belebele from facts the world repeats: a few facts about each of four animals, a question about
    one of them (where it lives or what it eats) and the four animals' answers as the options, every one
    in the passage -> (sentences, question, options, index of the answer)."""
    value, verb, role, np, wh = rng.choice([(w.home, "live", "loc", the, WHERE), (w.diet, "eat", "obj", generic, WHAT)])
    while True:
        animals = rng.sample(list(ANIMALS), 4)
        if len({value[x] for x in animals}) == 4 and not set(animals) & {value[x] for x in animals}:
            break
    sents = []
    for x in animals:
        facts = w.animal_facts(x)
        asked = next(f for f in facts if f.verb == verb)
        part = [asked] + rng.sample([f for f in facts if f is not asked], rng.randint(0, 1))
        rng.shuffle(part)
        sents += part
    i = rng.randrange(4)
    question = clause(generic(animals[i]), verb, (role, wh), tense="pres", q="wh")
    return sents, question, [np(value[x]) for x in animals], i
