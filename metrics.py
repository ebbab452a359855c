"""
Text metrics for the generative benchmarks: exact match, F1, ROUGE-L, chrF and BLEU.

Every score is a fraction in [0, 1] (sacrebleu's 0-100 are divided by 100), so that all tables of
evaluate.py read alike; the paper's tables print BLEU the same way (e.g. .091).

Words. F1, exact match and ROUGE-L compare *words*: the text is normalised as the SQuAD script does
(lowercase, punctuation removed, the English articles a/an/the dropped - for F1 and exact only - and
whitespace collapsed), with punctuation meaning every Unicode punctuation character (as MLQA's
multilingual version of the script does) rather than ASCII only. For a language written without spaces
(`spaces: false` in the manifest) whitespace does not mark words, so its words are its characters
(whitespace dropped) - the convention of MLQA's Chinese and of character-level ROUGE for such scripts.

Per example vs per corpus. Exact, F1 and ROUGE-L are computed per example (best over its reference
answers) and averaged. chrF and BLEU are computed at the corpus level over one task + language, as
sacrebleu's corpus_score and lm-evaluation-harness do: n-gram statistics are summed over all examples
before the score is formed, so a short output with no 4-gram match does not zero its own term.
BLEU tokenises with sacrebleu's default "13a" for spaced languages and "char" for the others.
"""

import re
import unicodedata

from sacrebleu.metrics import BLEU, CHRF

ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text, drop_articles=True):
    """SQuAD's normalisation, with Unicode punctuation: lower, no punctuation, (no articles), single spaces."""
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text.lower())
    if drop_articles:
        text = ARTICLES.sub(" ", text)
    return " ".join(text.split())


def words(text, spaces=True, drop_articles=True):
    """The units F1, exact match and ROUGE-L count: words, or characters for a script without spaces."""
    text = normalize(text, drop_articles)
    return text.split() if spaces else [c for c in text if not c.isspace()]


def exact(prediction, answers, spaces=True):
    """1.0 if the normalised prediction equals a normalised answer, else 0.0."""
    pred = words(prediction, spaces)
    return float(any(pred == words(a, spaces) for a in answers))


def f1(prediction, answers, spaces=True):
    """SQuAD's token F1 (bag of words, counts clipped), best over the answers."""
    pred = words(prediction, spaces)
    return max(_f1_counts(pred, words(a, spaces)) for a in answers)


def _f1_counts(pred, ref):
    if not pred or not ref:
        return float(pred == ref)  # SQuAD: both empty counts as a match, one empty as a miss
    common = 0
    ref_left = {}
    for w in ref:
        ref_left[w] = ref_left.get(w, 0) + 1
    for w in pred:
        if ref_left.get(w, 0) > 0:
            ref_left[w] -= 1
            common += 1
    if common == 0:
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


def rouge_l(prediction, answers, spaces=True):
    """ROUGE-L F-measure (Lin 2004, with beta = 1 as the rouge-score package reports it): precision and
    recall of the longest common subsequence of words, best over the answers."""
    pred = words(prediction, spaces, drop_articles=False)
    best = 0.0
    for answer in answers:
        ref = words(answer, spaces, drop_articles=False)
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


def score_generations(predictions, answers_per_example, spaces=True):
    """All five metrics for one task + language: {metric: score in [0, 1]}."""
    n = len(predictions)
    if n == 0 or n != len(answers_per_example):
        raise ValueError(f"score_generations: {n} predictions for {len(answers_per_example)} examples")
    return {
        "exact": sum(exact(p, a, spaces) for p, a in zip(predictions, answers_per_example)) / n,
        "f1": sum(f1(p, a, spaces) for p, a in zip(predictions, answers_per_example)) / n,
        "rouge_l": sum(rouge_l(p, a, spaces) for p, a in zip(predictions, answers_per_example)) / n,
        "chrf": corpus_chrf(predictions, answers_per_example),
        "bleu": corpus_bleu(predictions, answers_per_example, spaces),
    }
