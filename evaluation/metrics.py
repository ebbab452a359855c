"""
Text metrics for the generative benchmarks: exact match, F1, ROUGE-L, chrF, BLEU and spBLEU.

Every score is a fraction in [0, 1] (sacrebleu's 0-100 are divided by 100), so that all tables of
evaluate.py read alike; the paper's tables print BLEU the same way (e.g. .091).

Words. F1, exact match and ROUGE-L compare *words*, normalised as MLQA's official evaluation script
(mlqa_evaluation_v1.py, which lm-evaluation-harness's MLQA task follows) does: lowercase; punctuation
(every Unicode punctuation character and ASCII's string.punctuation) removed, not replaced by a space,
so "U.S." is "us"; the language's articles dropped (F1 and exact only); then split into words.
  - Articles: MLQA's lists for en, es, de, vi and Arabic's al- prefix (only where it starts a word, as
    the harness has it since March 2026, PR #3589; the official regex also cuts "ال" inside words); none for
    every other language, MLQA's hi and zh included. lang=None means English (SQuAD's a/an/the).
  - Splitting: Chinese by MLQA's mixed segmentation (each CJK character U+4E00-U+9FA5 a word, the runs
    between them split at whitespace, so "iPhone手机" is "iphone 手 机"); any other language written
    without spaces (`spaces: false` in the manifest: ja, th, my, the lab's Sanoi) by characters, since
    whitespace marks no words there; everything else at whitespace.
  - The lab's constructed languages (codes qaa-qtz) have no article list: their grammatical words are
    generated, and dropping words a real language calls articles would be arbitrary for them.

Per example vs per corpus. Exact, F1 and ROUGE-L are computed per example (best over its reference
answers) and averaged. chrF, BLEU and spBLEU are computed at the corpus level over one task + language,
as sacrebleu's corpus_score and lm-evaluation-harness do: n-gram statistics are summed over all examples
before the score is formed, so a short output with no 4-gram match does not zero its own term.
BLEU tokenises with sacrebleu's default "13a" for spaced languages and "char" for the others. spBLEU
(FLORES-200's metric) tokenises every language with the FLORES-200 sentencepiece model; sacrebleu would
download that model on first use, so we never let it: data/benchmarks/prepare.py --tasks flores caches it,
and corpus_spbleu stops with that command when it is missing.
"""

import os
import re
import string
import unicodedata

from sacrebleu.metrics import BLEU, CHRF

from pipeline.documents import flores200_spm

ARTICLES = {  # MLQA's, matched after punctuation is gone
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "ar": re.compile(r"(?:^|\s)ال"),
}
MIXED_SEGMENTATION = {"zh"}
CJK = re.compile(r"([\u4e00-\u9fa5])")
PREPARE_FLORES = "python data/benchmarks/prepare.py --tasks flores"


def normalize(text, lang=None, drop_articles=True):
    """MLQA's normalisation: lower, no punctuation, (no articles of `lang`); words joined by one space."""
    text = "".join(c for c in text.lower() if not _is_punctuation(c))
    articles = ARTICLES.get(lang or "en")
    if drop_articles and articles:
        text = articles.sub(" ", text)
    return " ".join(text.split())


def _is_punctuation(c):
    return c in string.punctuation or unicodedata.category(c).startswith("P")


def words(text, spaces=True, lang=None, drop_articles=True):
    """The units F1, exact match and ROUGE-L count: words, CJK characters + words (zh), or characters."""
    text = normalize(text, lang, drop_articles)
    if lang in MIXED_SEGMENTATION:
        return CJK.sub(r" \1 ", text).split()
    return text.split() if spaces else [c for c in text if not c.isspace()]


def exact(prediction, answers, spaces=True, lang=None):
    """1.0 if the normalised prediction equals a normalised answer, else 0.0."""
    pred = words(prediction, spaces, lang)
    return float(any(pred == words(a, spaces, lang) for a in answers))


def f1(prediction, answers, spaces=True, lang=None):
    """SQuAD's token F1 (bag of words, counts clipped), best over the answers."""
    pred = words(prediction, spaces, lang)
    return max(_f1_counts(pred, words(a, spaces, lang)) for a in answers)


def _f1_counts(pred, ref):
    common = 0
    ref_left = {}
    for w in ref:
        ref_left[w] = ref_left.get(w, 0) + 1
    for w in pred:
        if ref_left.get(w, 0) > 0:
            ref_left[w] -= 1
            common += 1
    if common == 0:  # MLQA (and SQuAD v1.1): nothing in common is 0, even when both sides are empty
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def lcs_length(a, b):
    """Length of the longest common subsequence of two token lists (dynamic programming, one row kept)."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0  # row[j - 1] of the previous row
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], diagonal + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def rouge_l(prediction, answers, spaces=True, lang=None):
    """ROUGE-L F-measure (Lin 2004, with beta = 1 as the rouge-score package reports it): precision and
    recall of the longest common subsequence of words (articles kept), best over the answers."""
    pred = words(prediction, spaces, lang, drop_articles=False)
    best = 0.0
    for answer in answers:
        ref = words(answer, spaces, lang, drop_articles=False)
        lcs = lcs_length(pred, ref) if pred and ref else 0
        if lcs:
            precision, recall = lcs / len(pred), lcs / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def _reference_streams(answers_per_example):
    # sacrebleu takes references as streams (one list per reference "slot"); an example with fewer
    # answers than the most has None in the slots it lacks, which sacrebleu skips
    n = max(len(a) for a in answers_per_example)
    return [[a[k] if k < len(a) else None for a in answers_per_example] for k in range(n)]


def corpus_bleu(predictions, answers_per_example, spaces=True):
    bleu = BLEU(tokenize="13a" if spaces else "char")
    return bleu.corpus_score(list(predictions), _reference_streams(answers_per_example)).score / 100


def corpus_chrf(predictions, answers_per_example):
    """chrF2 (character 1-6-grams, beta = 2, whitespace ignored): the same for every script."""
    return CHRF().corpus_score(list(predictions), _reference_streams(answers_per_example)).score / 100


def spbleu_metric():
    """sacrebleu's BLEU with tokenize="flores200", or a stop naming what is missing. The model must be
    cached already (sacrebleu would otherwise download it); call this before a long run to fail early."""
    path = flores200_spm()[1]
    if not os.path.exists(path):
        raise SystemExit(f"error: spBLEU needs the FLORES-200 sentencepiece model at {path}; "
                         f"fetch it once with: {PREPARE_FLORES}")
    try:
        return BLEU(tokenize="flores200")
    except ImportError:
        raise SystemExit("error: spBLEU needs the sentencepiece package: pip install sentencepiece") from None


def corpus_spbleu(predictions, answers_per_example):
    """spBLEU: BLEU over FLORES-200 sentencepiece pieces, one tokeniser for every language."""
    return spbleu_metric().corpus_score(list(predictions), _reference_streams(answers_per_example)).score / 100


def score_generations(predictions, answers_per_example, spaces=True, lang=None, spbleu=False):
    """Every metric for one task + language: {metric: score in [0, 1]}. `lang` picks the normalisation
    of the word metrics (see the top of this file); spbleu=True adds "spbleu" (FLORES-200)."""
    n = len(predictions)
    if n == 0 or n != len(answers_per_example):
        raise ValueError(f"score_generations: {n} predictions for {len(answers_per_example)} examples")
    pairs = list(zip(predictions, answers_per_example))
    scores = {
        "exact": sum(exact(p, a, spaces, lang) for p, a in pairs) / n,
        "f1": sum(f1(p, a, spaces, lang) for p, a in pairs) / n,
        "rouge_l": sum(rouge_l(p, a, spaces, lang) for p, a in pairs) / n,
        "chrf": corpus_chrf(predictions, answers_per_example),
        "bleu": corpus_bleu(predictions, answers_per_example, spaces),
    }
    if spbleu:
        scores["spbleu"] = corpus_spbleu(predictions, answers_per_example)
    return scores
