"""
BPE merges on token ids, made as tiktoken makes them: merge (tiktoken's merge loop in Python) and
encode_bytes, with which tokenizer.py keeps only tokens tiktoken can reach and adapt.py splits a new token
into base tokens; and extend()'s incremental bookkeeping of pair counts (count_pairs, merge_word).
A token is its id: tok_bytes[id] is its bytes, ranks[bytes] its rank, which is its id as in tiktoken.
"""
from collections import Counter, defaultdict


def merge(parts, ranks, tok_bytes):
    """tiktoken's merge loop without its whole-piece shortcut: repeatedly merge the adjacent pair whose
    concatenated bytes have the lowest rank (leftmost on ties) until no pair is a token."""
    parts = list(parts)
    inf = float("inf")
    pair_rank = [ranks.get(tok_bytes[a] + tok_bytes[b], inf) for a, b in zip(parts, parts[1:])]
    while pair_rank:
        i = min(range(len(pair_rank)), key=pair_rank.__getitem__)
        if pair_rank[i] == inf:
            break
        parts[i:i + 2] = [pair_rank[i]]  # a token's rank is its id
        del pair_rank[i]
        if i > 0:
            pair_rank[i - 1] = ranks.get(tok_bytes[parts[i - 1]] + tok_bytes[parts[i]], inf)
        if i < len(pair_rank):
            pair_rank[i] = ranks.get(tok_bytes[parts[i]] + tok_bytes[parts[i + 1]], inf)
    return parts


def encode_bytes(data, ranks, tok_bytes):
    """The ids merge-by-merge BPE makes of the bytes data, starting from its single-byte tokens."""
    return merge([ranks[bytes([c])] for c in data], ranks, tok_bytes)


def count_pairs(words, freqs):
    """Pair counts over all words, and for every pair the words holding it."""
    counts, where = Counter(), defaultdict(set)
    for w, (word, f) in enumerate(zip(words, freqs)):
        for k in range(len(word) - 1):
            counts[word[k:k + 2]] += f
            where[word[k:k + 2]].add(w)
    return counts, where


def merge_word(word, ab, t):
    """A word holding the pair ab with every ab (leftmost first) replaced by the token t, as tiktoken
    merges it, and the pair occurrences it lost and gained. Only pairs beside a merge site change:
    (x, a) -> (x, t) on the left, (b, y) -> (t, y) on the right, and between two adjacent sites
    (b, a) -> (t, t), counted once."""
    s = word.find(ab)
    if word.find(ab, s + 2) < 0:  # one site, the common case
        x, y = word[s - 1:s], word[s + 2:s + 3]  # "" at the edges
        removed = ([x + ab[0]] if x else []) + ([ab[1] + y] if y else [])
        return word[:s] + t + word[s + 2:], removed, ([x + t] if x else []) + ([t + y] if y else [])
    sites = []
    while s >= 0:
        sites.append(s)
        s = word.find(ab, s + 2)
    removed, added, n = [], [], len(word)
    for k, s in enumerate(sites):
        if s > 0 and (k == 0 or sites[k - 1] + 2 != s):
            removed.append(word[s - 1:s + 1])
            added.append(word[s - 1] + t)
        if s + 2 < n:
            removed.append(word[s + 1:s + 3])
            added.append(t + t if k + 1 < len(sites) and sites[k + 1] == s + 2 else t + word[s + 2])
    return word.replace(ab, t), removed, added
