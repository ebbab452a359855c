"""
The lab's world: what every language of the lab talks about.

Everything here is *meaning*, not text: noun phrases (NP) and clauses (Clause) that a language of
languages.py turns into a sentence. Concepts are named by their English word (English is a real
language, so its words are written by hand here); the constructed languages get their words from
languages.py. Facts (where each animal lives, what it eats, which shop sells which food) are drawn from
the seed, so every seed is a slightly different world; the causal rules below are the same in all.

A story draws fresh people, places, things and numbers each time, so the text has real entropy (a
small model cannot memorise it) and real structure to learn: grammar, the facts, the causal rules,
counting (had 7, gave 3, now has 4) and where things are (put in the box, later taken from the box).

The file is longer than the usual ~450 lines because it holds one idea whole: the world's concepts, its
seeded facts and rules, and the stories, exercises and benchmark items built from them, which must agree
with each other (a benchmark's right answer is a fact of this world; its wrong ones are other real facts).
"""

import random
from collections import namedtuple

N_NAMES = 64  # people; person i is female when i is even (English says "she"), male otherwise

# kind: name | pron | noun | num | wh.  count: None (one), int, "pl" (generic plural), "howmany" (asked)
NP = namedtuple("NP", "kind ref count adj det")
# args: ((role, value), ...) with role obj|to|loc|dest|src (value an NP) or adj (value an adjective);
# q: None | "yn" | "wh" (the wh-word sits where the asked phrase would be); adv: then|later|now|None
Clause = namedtuple("Clause", "subj verb args tense neg q adv")


def _plural(word):
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _nouns(spec):
    """'cat mouse:mice' -> {'cat': 'cats', 'mouse': 'mice'}; a trailing '-' marks a mass noun (no plural)."""
    table = {}
    for item in spec.split():
        word, _, plural = item.partition(":")
        table[word] = None if plural == "-" else (plural or _plural(word))
    return table


ANIMALS = _nouns("cat dog fox horse cow sheep:sheep goat pig bird mouse:mice rabbit bear wolf:wolves deer:deer "
                 "duck frog snake owl bee lion monkey goose:geese turtle fish:fish")
COUNT_FOODS = _nouns("apple pear egg cake carrot grape plum nut bean cherry lemon potato:potatoes "
                     "tomato:tomatoes onion melon banana cookie pie orange peach")
MASS_FOODS = _nouns("bread:- cheese:- rice:- soup:- honey:- corn:- meat:-")
DRINKS = _nouns("milk:- water:- tea:- juice:-")
THINGS = _nouns("cup glass plate bowl bottle mirror lamp vase key coin ring box bag basket bucket ball kite doll "
                "drum flute hat coat scarf jacket book letter map pen chair table bed clock candle knife:knives "
                "spoon rope ladder umbrella boat bell brush towel door window tree flower fence room game song "
                "town house")
# place -> the English preposition of "being there"
PLACES = dict(item.split(":") for item in (
    "kitchen:in garden:in market:at school:at river:at forest:in hill:on field:in farm:at village:in shop:in "
    "park:in beach:on lake:at bridge:on library:in station:at mountain:on cave:in island:on harbor:at "
    "bakery:at barn:in hospital:at tower:in castle:in meadow:in").split())
NOUNS = {**ANIMALS, **COUNT_FOODS, **MASS_FOODS, **DRINKS, **THINGS, **{p: _plural(p) for p in PLACES}}

COLORS = "red blue green yellow white black brown".split()
TASTES = "sweet sour salty".split()
ADJECTIVES = ("hungry tired cold thirsty happy sad sick wet hurt clean hot dark late dirty empty bored angry "
              "broken big small").split() + COLORS + TASTES

# verb -> English past tense (the present 3rd person is regular except "has")
VERBS = dict(item.split(":") for item in (
    "be:was have:had go:went eat:ate drink:drank sleep:slept drop:dropped break:broke wear:wore find:found "
    "lose:lost run:ran wash:washed swim:swam fall:fell rain:rained open:opened cook:cooked bite:bit cry:cried "
    "win:won light:lit hear:heard play:played fill:filled read:read sing:sang climb:climbed see:saw fix:fixed "
    "buy:bought give:gave put:put take:took meet:met live:lived sell:sold carry:carried "
    "paint:painted write:wrote build:built throw:threw catch:caught bring:brought "
    "hide:hid clean:cleaned").split())

# words that structure text and tasks; every language has its own (English spelling on the right)
FUNCTION_WORDS = {"because": "because", "so": "so", "then": "then", "later": "later", "now": "now",
                  "question": "question", "answer": "answer", "yes": "yes", "no": "no", "maybe": "maybe",
                  "who": "who", "what": "what", "where": "where", "howmany": "how many",
                  "english": "English", "ownname": "English", "he": "he", "she": "she"}

CATEGORIES = {
    "food": list(COUNT_FOODS) + list(MASS_FOODS), "drink": list(DRINKS),
    "fragile": "cup glass plate bowl bottle mirror lamp vase".split(), "valuable": "key coin ring".split(),
    "container": "box bag basket bucket".split(), "toy": "ball kite doll drum flute".split(),
    "clothes": "hat coat scarf jacket".split(), "place": list(PLACES), "water": ["river", "lake"],
    "washable": "cup plate bowl glass bottle coat hat scarf towel".split(), "high": "ladder tree chair".split(),
    "cooked": "soup rice meat egg potato".split(), "biter": "dog snake goose bee".split(),
    "light": ["candle", "lamp"], "muddy": ["garden", "field", "farm"], "vessel": "cup bottle bucket bowl glass".split(),
    "fixable": "clock chair lamp drum kite".split(), "climbable": "tree hill mountain tower ladder".split(),
    "readable": ["book", "letter", "map"], "writable": ["letter", "song", "book"],
    "paintable": "fence door chair boat window".split(), "buildable": ["boat", "fence", "table"],
    "cleanable": "room kitchen house barn bed".split(), "carriable": "box bag basket bucket knife spoon rope brush pen".split(),
    "gift": "cup glass plate bowl bottle mirror lamp vase flower".split(),
}
NATURE = "river forest hill field lake mountain cave island meadow beach barn farm".split()
SHOPS = ["market", "bakery", "farm", "shop"]
PREY = ["fish", "mouse", "frog", "bee"]

# Causal rules: (cause, effect, category of X). P is a person, X a thing of the category; a word after
# the verb is an adjective (predicate), a noun (object), or role:thing.
RULES = [
    ("P be hungry", "P eat X", "food"), ("P be tired", "P sleep", None), ("P drop X", "X break", "fragile"),
    ("P be cold", "P wear X", "clothes"), ("P be thirsty", "P drink X", "drink"),
    ("P find X", "P be happy", "valuable"), ("P lose X", "P be sad", "valuable"),
    ("P be sick", "P go dest:hospital", None), ("P run dest:X", "P be tired", "place"),
    ("P wash X", "X be clean", "washable"), ("P swim loc:X", "P be wet", "water"),
    ("P fall src:X", "P be hurt", "high"), ("it rain", "P open umbrella", None), ("P cook X", "X be hot", "cooked"),
    ("X bite P", "P cry", "biter"), ("P lose game", "P be angry", None), ("P win game", "P be happy", None),
    ("room be dark", "P light X", "light"), ("P be late", "P run", None), ("P hear bell", "P open door", None),
    ("P play loc:X", "P be dirty", "muddy"), ("P be dirty", "P wash", None), ("X be empty", "P fill X", "vessel"),
    ("P be bored", "P read book", None), ("P be happy", "P sing", None), ("X be broken", "P fix X", "fixable"),
    ("P climb X", "P see town", "climbable"),
]
# (verb, category of its object) for everyday activities in stories
ACTIVITIES = [("play", "toy"), ("read", "readable"), ("write", "writable"), ("paint", "paintable"),
              ("carry", "carriable"), ("build", "buildable"), ("clean", "cleanable"), ("hide", "valuable"),
              ("bring", "gift"), ("sing", None), ("throw", "toy"), ("catch", "toy")]


def name(i):
    return NP("name", i, None, None, None)


def the(noun, adj=None):
    return NP("noun", noun, None, adj, "the")


def a(noun, adj=None):
    return NP("noun", noun, None, adj, "a")


def num(noun, k):
    return NP("noun", noun, k, None, None)


def generic(noun):
    return NP("noun", noun, "pl", None, None)


def number(k):
    return NP("num", k, None, None, None)


WHO, WHAT, WHERE = (NP("wh", w, None, None, None) for w in ("who", "what", "where"))


def clause(subj, verb, *args, tense="past", neg=False, q=None, adv=None):
    return Clause(subj, verb, args, tense, neg, q, adv)


def _parse_part(spec):
    """'P fall src:X' -> ('P', 'fall', (('src', 'X'),)); words are read as in RULES' comment."""
    subj, verb, *rest = spec.split()
    args = []
    for word in rest:
        role, _, what = word.rpartition(":")
        args.append((role or ("adj" if what in ADJECTIVES else "obj"), what))
    return subj, verb, tuple(args)


_RULES = [(_parse_part(c), _parse_part(e), cat) for c, e, cat in RULES]


def _fill(part, p, x):
    def np(what):
        return name(p) if what == "P" else the(x if what == "X" else what)
    subj, verb, args = part
    return clause(None if subj == "it" else np(subj), verb,
                  *((role, what if role == "adj" else np(what)) for role, what in args))


def rule_clauses(i, p, x):
    """Rule i for person p and thing x -> (cause clause, effect clause), past tense."""
    cause, effect, _ = _RULES[i]
    return _fill(cause, p, x), _fill(effect, p, x)


def rule_key(i, side):
    """What a rule's cause (side 0) or effect (side 1) says, whatever X is: two rules with the same key
    give the same answer, so one must never be the other's wrong alternative."""
    return RULES[i][side], RULES[i][2]


def draw(rng, category):
    return rng.choice(CATEGORIES[category]) if category else None


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


class World:
    """The facts of one seed's world."""

    def __init__(self, seed):
        rng = random.Random(f"lab/world/{seed}")
        self.home = {x: rng.choice(NATURE) for x in ANIMALS}
        self.diet = {x: rng.choice([f for f in CATEGORIES["food"] + PREY if f != x]) for x in ANIMALS}
        self.color = {x: rng.choice(COLORS) for x in ANIMALS}
        self.size = {x: rng.choice(("big", "small")) for x in ANIMALS}
        foods = list(COUNT_FOODS)
        rng.shuffle(foods)
        self.shop = {f: SHOPS[i % len(SHOPS)] for i, f in enumerate(foods)}  # every shop sells something
        self.sells = {s: [f for f in COUNT_FOODS if self.shop[f] == s] for s in SHOPS}
        self.taste = {f: rng.choice(TASTES) for f in CATEGORIES["food"]}

    def animal_facts(self, x):
        g = generic(x)
        return [clause(g, "live", ("loc", the(self.home[x])), tense="pres"),
                clause(g, "eat", ("obj", generic(self.diet[x])), tense="pres"),
                clause(g, "be", ("adj", self.color[x]), tense="pres"),
                clause(g, "be", ("adj", self.size[x]), tense="pres")]

    def food_facts(self, f):
        facts = [clause(generic(f), "be", ("adj", self.taste[f]), tense="pres")]
        if f in self.shop:
            facts.append(clause(the(self.shop[f]), "sell", ("obj", generic(f)), tense="pres"))
        return facts


# ---- stories: a few people, a few events, a little state so that later sentences agree ------------

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


# ---- task items (language-neutral; prepare.py renders them in every language) ---------------------

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
