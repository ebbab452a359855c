"""
Self-similarity of contextual word vectors (Ethayarajh 2019), per layer, for evaluate.py.

For a word with n occurrences in a text sample, its self-similarity at a layer is the mean cosine between
its n contextual vectors over all pairs of occurrences; a language's self-similarity is the mean over its
words (each word weighs the same). The anisotropy baseline is the mean cosine between occurrences of two
different words: over every pair of different word types of the sample (each pair of types weighs the
same, as each word does in the self-similarity), the mean cosine between an occurrence of one and an
occurrence of the other. Ethayarajh estimates it from random pairs of different words; here it is
computed exactly. Pairs of the same word never count in it, so a frequent word does not pull it toward
its own self-similarity. The adjusted self-similarity is raw minus baseline; results report all three.

What a "word" is. Words are defined on the text, never by a tokenizer, so that models with different
vocabularies are measured on exactly the same occurrences of the same words:
  - a language written with spaces: a maximal run of word characters (regex \\w+, which keeps combining
    marks inside the word, so Devanagari or Thai vowel signs do not split it);
  - a language written without spaces (`spaces: false` in the manifest): a grapheme cluster holding a
    letter or digit - a character as the reader sees it. Without a segmenter there is no tokenizer-free
    word boundary, and characters are the unit such scripts are usually scored in.
A word's contextual vector is the hidden state at the token holding its last byte: in a causal decoder
that is the first position that has read the whole word, however many tokens it was cut into.
A document is cut so that every model reads it within its block (the smallest cut over the models),
so the word occurrences are the same for all models of one run.
"""

import numpy as np
import regex
import torch
import torch.nn.functional as F

from evaluation.inference import hidden_states

WORD = regex.compile(r"\w+")
GRAPHEME = regex.compile(r"\X")


def text_words(text, spaces):
    """(word, end offset in characters) of every word of a text: see the module docstring."""
    if spaces:
        return [(m.group(), m.end()) for m in WORD.finditer(text)]
    return [(m.group(), m.end()) for m in GRAPHEME.finditer(text) if m.group()[0].isalnum()]


def self_sim_sample(docs, readers, max_bytes, spaces, min_count):
    """The text sample of one language, the same for every model. readers: [(tokenizer, block_size)] of
    all models; each document is cut so that every one of them reads it within one block. Returns
    {"texts", "word_ends" (byte offsets), "word_ids" (index into "words", -1 for a rarer word), "words"}."""
    texts, occurrences, used = [], [], 0
    for doc in docs:
        if used >= max_bytes:
            break
        data = doc.encode("utf-8")
        limit = len(data)
        for tok, block, byte_lengths in readers:  # a model reads <|endoftext|> + block - 1 tokens of it
            limit = min(limit, int(byte_lengths[tok.encode(doc)[: block - 1]].sum()))
        text = data[:limit].decode("utf-8", errors="ignore")
        found = text_words(text, spaces)
        if limit < len(data) and found and found[-1][1] == len(text):
            found.pop()  # the cut may split this word
        ends, position, last = [], 0, 0
        for word, end in found:  # character offsets -> byte offsets, in one pass
            position += len(text[last:end].encode("utf-8"))
            ends.append(position)
            last = end
        texts.append(text)
        occurrences.append(([w for w, _ in found], np.array(ends, dtype=np.int64)))
        used += limit
    counts = {}
    for found, _ in occurrences:
        for w in found:
            counts[w] = counts.get(w, 0) + 1
    words = sorted(w for w, c in counts.items() if c >= min_count)
    index = {w: i for i, w in enumerate(words)}
    word_ids = [np.array([index.get(w, -1) for w in found], dtype=np.int64) for found, _ in occurrences]
    return {"texts": texts, "word_ends": [ends for _, ends in occurrences], "word_ids": word_ids, "words": words}


def similarity_sums(vectors, word_ids, n_words):
    """The sums from which both means follow, per layer: the sum of the unit vectors of each word, and each
    word's count. vectors [L, N, C]; word_ids [N] (-1 = a rarer word, not counted)."""
    unit = F.normalize(vectors.double(), dim=-1)
    per_word = torch.zeros(unit.size(0), n_words, unit.size(2), dtype=torch.float64, device=unit.device)
    chosen = word_ids >= 0
    per_word.index_add_(1, word_ids[chosen], unit[:, chosen])
    return per_word, torch.bincount(word_ids[chosen], minlength=n_words).double()


def cosine_means(per_word, counts):
    """(self-similarity, anisotropy baseline) per layer, from similarity_sums (added up over batches), over
    the words with at least two occurrences.

    For unit vectors u_1..u_n of one word with sum S, the sum of cos(u_i, u_j) over ordered pairs i != j is
    |S|^2 - n, so their mean is (|S|^2 - n) / (n (n - 1)): no loop over pairs. The mean cosine between an
    occurrence of word w and one of word v is m_w . m_v, with m_w = S_w / n_w the word's mean unit vector;
    over the W (W - 1) ordered pairs of different words, sum_{w != v} m_w . m_v = |sum_w m_w|^2 - sum_w |m_w|^2."""
    keep = counts >= 2
    if not keep.any():
        return None, None
    sums, n = per_word[:, keep], counts[keep]
    self_sim = ((sums.pow(2).sum(-1) - n) / (n * (n - 1))).mean(-1)
    if len(n) < 2:  # one word: no pair of different words
        return self_sim.tolist(), [None] * len(self_sim)
    means = sums / n[:, None]
    anisotropy = (means.sum(1).pow(2).sum(-1) - means.pow(2).sum(-1).sum(-1)) / (len(n) * (len(n) - 1))
    return self_sim.tolist(), anisotropy.tolist()


def self_similarity(vectors, word_ids):
    """(self-similarity, anisotropy baseline) per layer of vectors [L, N, C] (or [N, C]) of words word_ids [N]."""
    vectors = vectors[None] if vectors.dim() == 2 else vectors
    word_ids = torch.as_tensor(word_ids)
    n_words = int(word_ids.max()) + 1 if (word_ids >= 0).any() else 0
    return cosine_means(*similarity_sums(vectors, word_ids, n_words))


@torch.no_grad()
def language_self_sim(model, tok, sample, batch_size, device, autocast):
    """{"self_sim", "anisotropy", "adjusted"} per layer (0 = the embeddings) on one language's sample."""
    block, byte_lengths = model.config.block_size, tok.token_byte_lengths()
    n_words, sums, n_counted = len(sample["words"]), None, 0
    docs = list(zip(sample["texts"], sample["word_ends"], sample["word_ids"]))
    for first in range(0, len(docs), batch_size):
        rows, rows_b, rows_t, rows_w = [], [], [], []
        for b, (text, ends, ids) in enumerate(docs[first:first + batch_size]):
            tokens = ([tok.eot_id] + tok.encode(text))[:block]
            token_ends = np.cumsum(byte_lengths[tokens])
            position = np.searchsorted(token_ends, ends - 1, side="right")  # the token holding the last byte
            inside = position < len(tokens)  # always, unless re-encoding the cut text grew it past the block
            rows.append(tokens)
            rows_b.append(np.full(inside.sum(), b))
            rows_t.append(position[inside])
            rows_w.append(ids[inside])
        width = max(len(r) for r in rows)
        # padding comes last: causal
        idx = torch.tensor([r + [tok.eot_id] * (width - len(r)) for r in rows], device=device)
        b, t = torch.from_numpy(np.concatenate(rows_b)).to(device), torch.from_numpy(np.concatenate(rows_t)).to(device)
        word_ids = torch.from_numpy(np.concatenate(rows_w)).to(device)
        with autocast:
            vectors = torch.stack([state[b, t].float() for state in hidden_states(model, idx)])  # [L, words, C]
        batch_sums = similarity_sums(vectors, word_ids, n_words)
        sums = batch_sums if sums is None else tuple(s + x for s, x in zip(sums, batch_sums))
        n_counted += len(word_ids)
    self_sim, anisotropy = cosine_means(*sums) if sums else (None, None)
    if self_sim is None:
        return None, n_counted
    return {"self_sim": self_sim, "anisotropy": anisotropy,
            "adjusted": [None if a is None else s - a for s, a in zip(self_sim, anisotropy)]}, n_counted
