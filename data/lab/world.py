"""
The lab's world: what every language of the lab talks about.

Everything here is *meaning*, not text: noun phrases (NP) and clauses (Clause) that a language of
languages.py turns into a sentence. Concepts are named by their English word (English is a real
language, so its words are written by hand here); the constructed languages get their words from
languages.py. Facts (where each animal lives, what it eats, which shop sells which food) are drawn from
the seed, so every seed is a slightly different world; the causal rules below are the same in all.
The stories told about this world are in stories.py, the benchmark items asked about it in items.py.
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
                  "he": "he", "she": "she"}
# the instruction lines of the instruction data, by key (every constructed language has its own formula)
PHRASES = {"complete": "Complete the sentence.", "finish": "Finish the sentence with what is most likely.",
           "yes_no_maybe": "Answer with yes, no or maybe.", "ending": "How does the story end? Write one sentence.",
           "read": "Read the text and answer the question.",
           "answer": "Answer the question about the text in a few words.", "story": "Tell me a short story about"}

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
    "cleanable": "room kitchen house barn bed".split(),
    "carriable": "box bag basket bucket knife spoon rope brush pen".split(),
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
