"""A Lucene-style English analyzer for BM25: lowercase, word tokens, possessive strip,
Lucene's English stopwords, Porter stemming.

It reproduces the analyzer behind the shared SciFact and Cranfield BM25 runs (Lucene's
EnglishAnalyzer). The stemmer is PyStemmer's Snowball "porter", the C build of the
same algorithm the runs used through snowballstemmer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET.
LUCENE_ENGLISH_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with"))

# Words with inner apostrophes stay whole, as in Lucene's StandardTokenizer.
_WORD = re.compile(r"\w+(?:['\u2019]\w+)*")
_POSSESSIVE = re.compile(r"['\u2019]s$")


@dataclass(frozen=True)
class EnglishAnalyzer:
    """Text -> index terms. Its settings are recorded in an index's manifest."""

    stemmer: str = "porter"  # a PyStemmer algorithm name, or "none"
    stopwords: str = "lucene"  # "lucene" or "none"

    @cached_property
    def _stem(self) -> Any:
        if self.stemmer == "none":
            return None
        import Stemmer

        return Stemmer.Stemmer(self.stemmer).stemWords

    def terms(self, text: str) -> list[str]:
        words = [_POSSESSIVE.sub("", w) for w in _WORD.findall(text.lower())]
        if self.stopwords == "lucene":
            words = [w for w in words if w and w not in LUCENE_ENGLISH_STOPWORDS]
        return list(self._stem(words)) if self._stem is not None else words

    def terms_many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.terms(t) for t in texts]

    def settings(self) -> dict[str, str]:
        return {"stemmer": self.stemmer, "stopwords": self.stopwords}
