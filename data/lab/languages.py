"""
The lab's languages: English plus thirteen constructed languages that say the same things as English
(world.py) with their own words, word order, morphology and script.

A constructed language is made from the seed, never from a word list: it picks a sound pattern (some
consonants, some vowels, whether syllables may end in a consonant), draws every word from it, and
writes the words in its script. A "sister" language keeps most words of its parent through regular
sound changes (so it is near the parent, as Portuguese is near Spanish); the sister of English does the
same to the English spelling. Grammar is one of a few switches: SVO / SOV / VSO order, case and tense
suffixes ("suffixing") or separate particles ("isolating"), adjective before or after the noun, a
present-tense copula or none.

Speed matters (prepare.py writes megabytes): every word form is built once and cached; a sentence is a
handful of dictionary look-ups and one join.
"""

import copy
import random

from data.lab import world as W
from data.lab.scripts import CASED, CIPHER_LETTERS, CODAS, CONSONANTS, DIGITS, PERIOD, VOWELS, make_names, render
from data.lab.world import NP, Clause

# code, name, group, script, word order, morphology, written with spaces, sister of
LANGS = [
    ("en", "English", "pretraining", "Latin", "SVO", "isolating", True, None),
    ("qcy", "Kovran", "pretraining", "Cyrillic", "SOV", "suffixing", True, None),
    ("qdv", "Devashi", "pretraining", "Devanagari", "SOV", "isolating", True, None),
    ("qla", "Lumaro", "pretraining", "Latin", "VSO", "suffixing", True, None),
    ("qen", "Engmar", "adapting", "Latin", "SVO", "suffixing", True, "en"),
    ("qcs", "Kovrish", "adapting", "Cyrillic", "SOV", "suffixing", True, "qcy"),
    ("qdm", "Devaru", "adapting", "Devanagari", "SOV", "isolating", True, "qdv"),
    ("qtu", "Tuvani", "adapting", "Latin", "SOV", "suffixing", True, None),
    ("qko", "Hanbi", "adapting", "Hangul", "SOV", "suffixing", True, None),
    ("qth", "Sanoi", "adapting", "Thai", "SVO", "isolating", False, None),
    ("qlv", "Lumeri", "other", "Latin", "VSO", "suffixing", True, "qla"),
    ("qkv", "Veskan", "other", "Cyrillic", "SVO", "isolating", True, None),
    ("qka", "Gvelo", "unseen_script", "Georgian", "VSO", "suffixing", True, None),
    ("qhy", "Aravan", "unseen_script", "Armenian", "VSO", "isolating", True, None),
]

# ---- constructed lexicons -----------------------------------------------------------------------
GRAMMAR = ["pl", "acc", "dat", "loc", "all", "abl", "past", "pres", "neg"]  # suffixes or particles
ROLE_CASE = {"subj": "nom", "obj": "acc", "to": "dat", "loc": "loc", "dest": "all", "src": "abl"}
CONCEPTS = ([(c, 1) for c in list(W.FUNCTION_WORDS) + ["they", "qpart"]] + [(v, 1) for v in W.VERBS]
            + [(x, 2) for x in W.ADJECTIVES] + [(n, 2) for n in W.NOUNS])
# letter changes for the sister of English, applied in order to the English spelling (a seeded subset)
ENGLISH_CHANGES = [("th", "d"), ("wh", "v"), ("w", "v"), ("ck", "k"), ("c", "k"), ("sh", "sj"), ("ee", "ie"),
                   ("oo", "oe"), ("ou", "oe"), ("y", "ij"), ("qu", "kw"), ("x", "ks"), ("ea", "ee"),
                   ("ph", "f"), ("gh", "g"), ("ai", "ei"), ("ow", "au"), ("tion", "sjon")]


class Phonology:
    """A sound pattern: which consonants and vowels, and how often a syllable ends in a consonant."""

    def __init__(self, rng, script):
        cons = CONSONANTS[script]
        self.cons = rng.sample(cons, min(len(cons), rng.randint(9, 13)))
        self.vowels = rng.sample(VOWELS, rng.randint(3, 5))
        self.codas = rng.sample([c for c in CODAS if c in cons], rng.randint(0, 4))
        self.p_coda = rng.choice((0.15, 0.3, 0.45)) if self.codas else 0.0

    def word(self, rng, n, onset=False):
        """n syllables; only a word's first syllable may lack an onset (a suffix never does)."""
        return tuple((rng.choice(self.cons) if onset or i or rng.random() > 0.15 else "", rng.choice(self.vowels),
                      rng.choice(self.codas) if rng.random() < self.p_coda else "") for i in range(n))


class Realiser:
    """What English and the constructed languages share: sentences, texts, question/answer lines."""

    def cap(self, text):
        return text[:1].upper() + text[1:] if self.cased else text

    def sentence(self, s):
        if isinstance(s, Clause):
            return self.cap(self.clause(s)) + ("?" if s.q else self.period)
        conj, c1, c2 = s
        return self.cap(self.clause(c1) + self.comma + self.sep + self.word(conj) + self.sep
                        + self.clause(c2)) + self.period

    def text(self, sents):
        return self.sep.join([self.sentence(s) for s in sents])

    def label(self, concept):
        if self.english_scaffold:  # the template words of web pages and benchmarks, often left in English
            return W.FUNCTION_WORDS[concept].capitalize() + ":"
        return self.cap(self.word(concept)) + ":"

    def ask(self, question):
        """'Question: <question>\\nAnswer:' - the answer follows (after a space where words are spaced)."""
        return self.label("question") + self.sep + self.sentence(question) + "\n" + self.label("answer")


class English(Realiser):
    code, label_name, group, script, order, morph, spaces, sister = LANGS[0]
    cased, sep, period, comma, english_scaffold = True, " ", ".", ",", False

    def __init__(self, names):
        self.names = [render("Latin", n).capitalize() for n in names]

    def word(self, concept):
        return W.FUNCTION_WORDS[concept]

    def lexeme(self, concept):
        """A noun's, verb's or adjective's dictionary form (what the word probe looks for in text)."""
        return concept

    def phrase(self, key):
        return W.PHRASES[key]

    def digits(self, k):
        return str(k)

    @staticmethod
    def plural(np):
        if np is None or np.kind != "noun":
            return False
        return np.count != 1 and np.count is not None and W.NOUNS[np.ref] is not None

    def np(self, x, role="subj"):
        k = x.kind
        if k == "name":
            s = self.names[x.ref]
        elif k == "pron":
            s = "she" if x.ref % 2 == 0 else "he"
        elif k == "num":
            return str(x.ref)
        elif k == "wh":
            return x.ref
        else:
            w = (W.NOUNS[x.ref] or x.ref) if self.plural(x) else x.ref
            if x.adj:
                w = x.adj + " " + w
            if type(x.count) is int:
                s = f"{x.count} {w}"
            elif x.count == "howmany":
                s = "how many " + w
            elif x.det == "the":
                s = "the " + w
            elif x.det == "a":
                s = ("an " if w[0] in "aeiou" else "a ") + w
            else:
                s = w
        if role in ("to", "dest"):
            return "to " + s
        if role == "src":
            return "from " + s
        if role == "loc":
            return W.PLACES.get(x.ref, "in") + " " + s
        return s

    def args(self, verb, args):
        out = []
        for role, v in args:
            if role == "adj":
                out.append(v)
            elif role == "obj":
                out.append(("with " if verb == "play" else "") + self.np(v, "obj"))
            else:
                out.append(self.np(v, role))
        return out

    def verb(self, v, tense, neg, plural):
        if v == "be":
            form = ("are" if plural else "is") if tense == "pres" else ("were" if plural else "was")
            return form + " not" if neg else form
        if neg:
            return ("did" if tense == "past" else "do" if plural else "does") + " not " + v
        if tense == "past":
            return W.VERBS[v]
        if plural:
            return v
        return "has" if v == "have" else v + "es" if v.endswith("o") else W._plural(v)

    def clause(self, c):
        if c.q == "wh" and c.subj.kind != "wh":
            return self._wh(c)
        plural = self.plural(c.subj)
        subj = self.np(c.subj) if c.subj else "it"
        if c.q == "yn":
            if c.verb == "be":
                words = [self.verb("be", c.tense, False, plural), subj]
            else:
                words = ["did" if c.tense == "past" else "do" if plural else "does", subj, c.verb]
        else:
            words = [subj, self.verb(c.verb, c.tense, c.neg, plural)]
        words += self.args(c.verb, c.args)
        if c.adv:
            words.insert(0, c.adv)
        return " ".join(words)

    def _wh(self, c):
        """Where did Mara go? / How many pears did Mara buy? / Who did Mara give the ball to?"""
        i = next(i for i, (_, v) in enumerate(c.args) if isinstance(v, NP) and (v.kind == "wh" or v.count == "howmany"))
        role, v = c.args[i]
        front = v.ref if v.kind == "wh" else self.np(v)
        plural = self.plural(c.subj)
        if c.verb == "be":
            words = [front, self.verb("be", c.tense, False, plural), self.np(c.subj)]
        else:
            words = [front, "did" if c.tense == "past" else "do" if plural else "does", self.np(c.subj), c.verb]
        words += self.args(c.verb, c.args[:i] + c.args[i + 1:])
        return " ".join(words + (["to"] if role == "to" else []))


class Conlang(Realiser):
    def __init__(self, spec, seed, names, parent=None, cognates=0.0, latin_names=False, ascii_digits=False,
                 english_scaffold=False):
        self.code, self.label_name, self.group, self.script, self.order, self.morph, self.spaces, self.sister = spec
        self.ascii_digits, self.english_scaffold = ascii_digits, english_scaffold
        self.loans = None  # (rng, rate) while code-switching (code_switching())
        rng = random.Random(f"lab/lang/{seed}/{self.code}")
        self.cased = self.script in CASED
        self.sep, self.comma = (" ", ",") if self.spaces else ("", "")
        self.period = PERIOD.get(self.script, ".")
        self.suffixing = self.morph == "suffixing"
        self.postpositions = self.order == "SOV"  # particles follow what they mark in verb-final languages
        # sisters keep their parent's sound pattern and grammar switches; the rest draw them
        if parent is not None and not isinstance(parent, English):
            self.ph, self.adj_after, self.drop_copula, self.gendered = (
                parent.ph, parent.adj_after, parent.drop_copula, parent.gendered)
        else:
            self.ph = Phonology(rng, self.script)
            self.adj_after, self.drop_copula, self.gendered = rng.random() < 0.5, rng.random() < 0.4, rng.random() < 0.5
        self.syl, self.lex = {}, {}  # concept -> syllables / written root
        used = set()
        if isinstance(parent, English):
            self._derive_english(rng, used, 0.75)
        elif parent is not None:
            self._derive(rng, parent, used)
        elif cognates:  # a share of words from English, as Spanish and Italian share many with it
            self._derive_english(rng, used, cognates)
        for concept, n in CONCEPTS + [(g, 1) for g in GRAMMAR]:
            if concept not in self.lex:
                self._fresh(rng, concept, n, used)
        if self.suffixing and rng.random() < 0.5:
            self.lex["pres"] = ""  # many languages leave the present unmarked
        # the instruction lines (world.PHRASES): fixed formulas of a few fresh words, drawn last so that
        # every other word is what it was before they existed
        self.phrases = {key: self._phrase(rng, english, used) for key, english in W.PHRASES.items()}
        self.names = [render("Latin", n).capitalize() if latin_names else self.cap(render(self.script, n))
                      for n in names]
        self.words = {c: self.lex[c] for c, _ in CONCEPTS}
        self.verbs = {(v, t, neg): self._verb(v, t, neg)
                      for v in W.VERBS for t in ("pres", "past") for neg in (False, True)}
        self.cache = {}

    # -- the lexicon
    def _fresh(self, rng, concept, n, used):
        suffix = concept in GRAMMAR and self.suffixing
        for attempt in range(200):
            syls = self.ph.word(rng, n + attempt // 20 + (rng.random() < 0.4 and n > 1), onset=suffix)
            written = render(self.script, syls)
            if written not in used:
                break
        used.add(written)
        self.syl[concept], self.lex[concept] = syls, written

    def _derive(self, rng, parent, used):
        """Regular sound changes: each consonant / vowel of the parent may shift, the same way everywhere."""
        cmap = {c: c if rng.random() < 0.7 else rng.choice(self.ph.cons) for c in parent.ph.cons + [""]}
        cmap[""] = ""
        vmap = {v: v if rng.random() < 0.7 else rng.choice(self.ph.vowels) for v in parent.ph.vowels}
        for concept, syls in parent.syl.items():
            if rng.random() < 0.75:  # a cognate; the rest of the vocabulary is new
                new = tuple((cmap.get(o, o), vmap.get(v, v), cmap.get(c, c)) for o, v, c in syls)
                written = render(self.script, new)
                if written not in used:
                    used.add(written)
                    self.syl[concept], self.lex[concept] = new, written

    def _derive_english(self, rng, used, share):
        """A share of the concepts' words from their English spelling, through seeded letter changes."""
        changes = [ch for ch in ENGLISH_CHANGES if rng.random() < 0.5]
        ending = rng.choice("aeo")
        for concept, _ in CONCEPTS:
            if rng.random() < share:
                w = W.FUNCTION_WORDS.get(concept, concept).lower().replace(" ", "")
                for old, new in changes:
                    w = w.replace(old, new)
                if w[-1] not in "aeiou" and rng.random() < 0.4:
                    w += ending
                if w not in used:
                    used.add(w)
                    self.lex[concept] = w

    def _phrase(self, rng, english, used):
        words = []
        for _ in range(min(4, len(english.split()))):
            self._fresh(rng, "phrase", rng.choice((1, 2)), used)
            words.append(self.lex.pop("phrase"))
            del self.syl["phrase"]  # not a word a sister language inherits
        return self.cap(self.sep.join(words)) + (self.period if english.endswith(".") else "")

    def code_switching(self, rng, rate):
        """This language as code-switched text writes it: each occurrence of a noun is, with probability
        rate, the English word in Latin letters (with this language's endings and particles), as loanwords
        and English terms are in real text. A copy: the language itself is unchanged."""
        mixed = copy.copy(self)
        mixed.loans = (rng, rate)
        return mixed

    # -- word forms
    def word(self, concept):
        return self.words[concept]

    def lexeme(self, concept):
        return self.lex[concept]  # a root: a suffixing language adds its endings to it

    def phrase(self, key):
        return self.phrases[key]

    def digits(self, k):
        if self.ascii_digits or self.script not in DIGITS:
            return str(k)
        return str(k).translate(DIGITS[self.script])

    def _verb(self, v, tense, neg):
        if v == "be" and tense == "pres" and not neg and self.drop_copula:
            return ""
        lex = self.lex
        if self.suffixing:
            return lex[v] + (lex["past"] if tense == "past" else lex["pres"]) + (lex["neg"] if neg else "")
        parts = [self.words[v]]
        if tense == "past":
            parts.append(lex["past"])
        if neg:
            parts.append(lex["neg"])
        return self.sep.join(parts if self.postpositions else parts[::-1])

    def np(self, x, role="subj"):
        loan = x.kind == "noun" and self.loans is not None and self.loans[0].random() < self.loans[1]
        key = (x, role, loan)
        s = self.cache.get(key)
        if s is not None:
            return s
        case, lex, k = ROLE_CASE.get(role, "nom"), self.lex, x.kind
        if k == "num":
            s = self.digits(x.ref)
        elif k == "wh" and x.ref == "where":
            s = self.words["where"]
        else:
            if k == "name":
                root = self.names[x.ref]
            elif k == "pron":
                root = lex[("she" if x.ref % 2 == 0 else "he") if self.gendered else "they"]
            else:
                root = x.ref if loan else lex[x.ref]
            plural = k == "noun" and x.count is not None and x.count != 1
            if self.suffixing:
                root += (lex["pl"] if plural else "") + (lex[case] if case != "nom" else "")
            parts = [root]
            if x.adj:
                parts.insert(len(parts) if self.adj_after else 0, self.words[x.adj])
            if x.count == "howmany":
                parts.insert(0, self.words["howmany"])
            elif type(x.count) is int:
                parts.insert(0, self.digits(x.count))
            s = self.sep.join(parts)
            if not self.suffixing and case not in ("nom", "acc"):
                marker = lex[case]
                s = s + self.sep + marker if self.postpositions else marker + self.sep + s
        self.cache[key] = s
        return s

    def clause(self, c):
        subj = self.np(c.subj) if c.subj is not None else ""
        obj, rest = "", []
        for role, v in c.args:
            if role == "adj":
                obj = self.words[v]
            elif role == "obj":
                obj = self.np(v, "obj")
            else:
                rest.append(self.np(v, role))
        verb = self.verbs[c.verb, c.tense, c.neg]
        if self.order == "SVO":
            parts = [subj, verb, obj, *rest]
        elif self.order == "SOV":
            parts = [subj, *rest, obj, verb]
        else:
            parts = [verb, subj, obj, *rest]
        if c.adv:
            parts.insert(0, self.words[c.adv])
        if c.q == "yn":
            parts.append(self.words["qpart"])
        return self.sep.join([p for p in parts if p])



class Relexified(English):
    """English relexified (Dufter & Schütze 2020's "fake English"): English's grammar, word order and
    morphology, every word rewritten by a seeded letter cipher into a script, so each English word form
    has exactly one new word form and its tokens mirror English's. The instrument's maximal channel: if
    nothing transfers between these two, nothing will between less alike languages."""

    def __init__(self, spec, seed, names):
        super().__init__(names)
        self.code, self.label_name, self.group, self.script, _, _, self.spaces, self.sister = spec
        rng = random.Random(f"lab/relexify/{seed}/{self.code}")
        letters = rng.sample(CIPHER_LETTERS[self.script], 26)
        self.cipher = str.maketrans("abcdefghijklmnopqrstuvwxyz" + "abcdefghijklmnopqrstuvwxyz".upper(),
                                    "".join(letters) + "".join(letters).upper())
        self.names = [n.translate(self.cipher) for n in self.names]

    # every method that returns text, ciphered; ciphering ciphered text changes nothing (no Latin left), so
    # these may call each other freely
    def word(self, concept):
        return super().word(concept).translate(self.cipher)

    def phrase(self, key):
        return super().phrase(key).translate(self.cipher)

    def lexeme(self, concept):
        return concept.translate(self.cipher)

    def np(self, x, role="subj"):
        return super().np(x, role).translate(self.cipher)

    def clause(self, c):
        return super().clause(c).translate(self.cipher)

    def code_switching(self, rng, rate):
        return self  # its words are English's already, one to one


def build_languages(seed, orders=None, cognates=None, relexify=(), **options):
    """All languages of the lab, in LANGS order (a sister is built after its parent). orders: {code: word
    order} to change LANGS' word orders; cognates: {code: share of words from English} (Latin script);
    relexify: codes of languages that become Relexified English in their script (a sister of one is still
    made from the constructed language it replaces); options: Conlang's latin_names, ascii_digits,
    english_scaffold."""
    names = make_names(seed)
    langs, made = {}, {}
    for spec in LANGS:
        if spec[0] == "en":
            langs["en"] = made["en"] = English(names)
            continue
        spec = spec[:4] + ((orders or {}).get(spec[0], spec[4]),) + spec[5:]
        made[spec[0]] = Conlang(spec, seed, names, made[spec[7]] if spec[7] else None,
                                (cognates or {}).get(spec[0], 0.0), **options)
        langs[spec[0]] = Relexified(spec, seed, names) if spec[0] in relexify else made[spec[0]]
    return list(langs.values())
