"""Word tokenizer built from the training text (works offline; stored with the weights).

Example::

    vocab = Vocab.build(["What is Ann holding?", "a red ball"], min_count=1)
    ids = vocab.encode("what is ann holding ?")          # [.., UNK for unseen words]
    Vocab.from_json(vocab.to_json()) == vocab
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks."""
    return _WORD.findall(text.lower())


@dataclass
class Vocab:
    """Token list; index = id. The first five are the special tokens."""

    tokens: list[str]

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and other.tokens == self.tokens

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1, max_size: int = 30000) -> "Vocab":
        """Words seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
        counts = Counter(w for text in texts for w in words(text))
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(list(SPECIALS) + kept[: max(0, max_size - len(SPECIALS))])

    def encode(self, text: str) -> list[int]:
        return [self.index.get(w, UNK) for w in words(text)]

    def to_json(self) -> str:
        return json.dumps(self.tokens)

    @classmethod
    def from_json(cls, text: str) -> "Vocab":
        tokens = json.loads(text)
        if not isinstance(tokens, list) or tokens[: len(SPECIALS)] != list(SPECIALS):
            raise ValueError("not a cvsuite videoqa vocabulary")
        return cls([str(t) for t in tokens])


def pair(first: list[int], second: list[int], max_len: int) -> tuple[list[int], list[int]]:
    """``[CLS] first [SEP] second [SEP]`` cut to ``max_len`` (the first part is shortened first);
    returns (ids, segment) where segment is 1 on the tokens of ``second``."""
    room = max_len - 3
    second = second[: max(1, room // 2)] if len(first) + len(second) > room else second
    first = first[: max(0, room - len(second))]
    ids = [CLS] + first + [SEP] + second + [SEP]
    segment = [0] * (len(first) + 2) + [1] * len(second) + [0]
    return ids, segment
