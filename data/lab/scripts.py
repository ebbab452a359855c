"""
How the lab's languages are written: each script's letters for the lab's phonemes (Latin, Cyrillic, Armenian,
Georgian alphabets; Devanagari with its vowel signs; Hangul syllable blocks; Thai with vowels before and after
the consonant), the shared person names, each distinct in every script, and the cipher letters of a relexified
English (languages.Relexified).
"""

import random

from data.lab import world as W

VOWELS = ["a", "e", "i", "o", "u"]
CODAS = ["n", "m", "l", "s", "k", "t", "r"]
NAME_CONSONANTS = ["p", "t", "k", "b", "d", "g", "m", "n", "s", "l", "h"]  # distinct in every script


def _letters(consonants, vowels):
    cons = dict(zip("p t k b d g m n s l r h v z j sh ch".split(), consonants.split()))
    cons = {k: v for k, v in cons.items() if v != "-"}  # '-': the script has no letter for it
    return cons, dict(zip(VOWELS, vowels.split()))


ALPHABETS = {
    "Latin": _letters("p t k b d g m n s l r h v z j sh ch", "a e i o u"),
    "Cyrillic": _letters("п т к б д г м н с л р х в з й ш ч", "а е и о у"),
    "Armenian": _letters("պ տ կ բ դ գ մ ն ս լ ր հ վ զ յ շ չ", "ա ե ի ո ու"),
    "Georgian": _letters("პ ტ კ ბ დ გ მ ნ ს ლ რ ჰ ვ ზ - შ ჩ", "ა ე ი ო უ"),
}
DEVA_C, _ = _letters("प त क ब द ग म न स ल र ह व ज़ य श च", "a e i o u")
DEVA_MATRA = {"a": "", "e": "\u0947", "i": "\u093f", "o": "\u094b", "u": "\u0941"}
DEVA_VOWEL = {"a": "अ", "e": "ए", "i": "इ", "o": "ओ", "u": "उ"}
# Hangul syllable = 0xAC00 + (onset * 21 + vowel) * 28 + coda; no letters for r, v, z, sh
HANGUL_ONSET = {"g": 0, "n": 2, "d": 3, "l": 5, "m": 6, "b": 7, "s": 9, "": 11, "j": 12, "ch": 14, "k": 15,
                "t": 16, "p": 17, "h": 18}
HANGUL_VOWEL = {"a": 0, "e": 5, "o": 8, "u": 13, "i": 20}
HANGUL_CODA = {"": 0, "k": 1, "n": 4, "t": 7, "l": 8, "m": 16, "p": 17, "s": 19}
THAI_C, _ = _letters("ป ต ก บ ด ค ม น ส ล ร ห ว ซ ย ช จ", "a e i o u")
THAI_VOWEL = {"a": ("", "า"), "e": ("เ", ""), "i": ("", "ิ"), "o": ("โ", ""), "u": ("", "ุ")}  # (before, after)

CONSONANTS = {**{s: list(c) for s, (c, _) in ALPHABETS.items()}, "Devanagari": list(DEVA_C),
              "Hangul": [c for c in HANGUL_ONSET if c], "Thai": list(THAI_C)}
CASED = {"Latin", "Cyrillic", "Armenian"}
PERIOD = {"Devanagari": "।", "Armenian": "։", "Thai": "๚"}
DIGITS = {"Devanagari": str.maketrans("0123456789", "०१२३४५६७८९"), "Thai": str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")}


def render(script, syllables):
    """Write a word, given as (onset, vowel, coda) syllables, in a script."""
    if script == "Devanagari":
        return "".join((DEVA_C[o] + DEVA_MATRA[v] if o else DEVA_VOWEL[v]) + (DEVA_C[c] + "\u094d" if c else "")
                       for o, v, c in syllables)
    if script == "Hangul":
        return "".join(chr(0xAC00 + (HANGUL_ONSET[o] * 21 + HANGUL_VOWEL[v]) * 28 + HANGUL_CODA[c])
                       for o, v, c in syllables)
    if script == "Thai":  # a syllable without onset is written on the silent letter อ, as in Thai
        return "".join(THAI_VOWEL[v][0] + (THAI_C[o] if o else "อ") + THAI_VOWEL[v][1] + (THAI_C[c] if c else "")
                       for o, v, c in syllables)
    cons, vowels = ALPHABETS[script]
    return "".join((cons[o] if o else "") + vowels[v] + (cons[c] if c else "") for o, v, c in syllables)


def make_names(seed):
    """N_NAMES person names from one shared sound pattern (names travel between languages), each
    distinct in every script. Even (female) names end in a, e or i; odd ones in o, u or a consonant."""
    rng = random.Random(f"lab/names/{seed}")
    scripts = list(ALPHABETS) + ["Devanagari", "Hangul", "Thai"]
    seen, names = set(), []
    while len(names) < W.N_NAMES:
        female = len(names) % 2 == 0
        syls = [(rng.choice(NAME_CONSONANTS), rng.choice(VOWELS), rng.choice(["", "", "", "n", "l", "s", "m"]))
                for _ in range(rng.choice((2, 2, 3)))]
        o, _, _ = syls[-1]
        syls[-1] = (o, rng.choice("aei" if female else "ou"), "" if female else rng.choice(["", "n", "s"]))
        written = [(s, render(s, syls)) for s in scripts]
        if not seen.isdisjoint(written):
            continue
        seen.update(written)
        names.append(tuple(syls))
    return names


# the letters a relexified English is written in (Relexified): 26 of each script's lowercase letters
CIPHER_LETTERS = {"Cyrillic": "абвгдежзийклмнопрстуфхцчшщыэюя", "Latin": "abcdefghijklmnopqrstuvwxyz"}
