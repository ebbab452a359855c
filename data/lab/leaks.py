"""
Keeping the benchmark items out of what a model trains on: two exact finders of many strings in a text.
prepare.py drops a training document that holds an item's answer (Verbatim) and an instruction conversation
that holds a benchmark passage (Snippets).
"""

import re


class Verbatim:
    """Tells whether a text contains any of many strings, exactly (in any script, spaces or none): each
    string is looked up by its first few characters at every position of the text, then compared in full."""

    def __init__(self, strings):
        self.key = min([12] + [len(s) for s in strings])
        self.index = {}
        for s in strings:
            self.index.setdefault(s[:self.key], []).append(s)

    def found_in(self, text):
        return any(text.startswith(s, i) for i in range(len(text) - self.key + 1)
                   for s in self.index.get(text[i:i + self.key], ()))



class Snippets:
    """Tells whether a text contains any of many snippets (case-insensitive). A snippet is looked up by
    its first k whole words (k <= 3; its last word may be cut in the text, so it never counts) at every
    word of the text, then compared in full."""

    def __init__(self, snippets):
        self.index = {}
        for s in snippets:
            s = s.lower()
            k = min(3, len(s.split()) - 1)
            self.index.setdefault((k, " ".join(s.split()[:k])), []).append(s)
        self.ks = sorted({k for k, _ in self.index})

    def found_in(self, text):
        text = text.lower()
        words = [(m.start(), m.group()) for m in re.finditer(r"\S+", text)]
        for i, (start, _) in enumerate(words):
            for k in self.ks:
                for s in self.index.get((k, " ".join([x for _, x in words[i:i + k]])), ()):
                    if text.startswith(s, start):
                        return True
        return False
