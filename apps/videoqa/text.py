"""Tokenizers of the text encoder; both are stored inside the weights file.

* :class:`Vocab` - a word tokenizer built from the training text (the default small encoder; offline);
* :class:`PretrainedTokenizer` - the tokenizer of a local Hugging Face checkpoint (``--text-model DIR``,
  BERT WordPiece / RoBERTa byte-level BPE ...), read with ``local_files_only=True`` and kept as its
  ``tokenizer.json`` text, so eval / infer need only the weights file.

Both give ``encode_pair(question, answer, max_len) -> (ids, answer_segment)`` and
``encode_sentence(text, max_len) -> ids`` with id 0 = padding (:data:`PAD`), plus ``mask_id`` and
``special_ids`` for the masking noise.

Example::

    vocab = Vocab.build(["What is Ann holding?", "a red ball"], min_count=1)
    ids = vocab.encode("what is ann holding ?")          # [.., UNK for unseen words]
    Vocab.from_json(vocab.to_json()) == vocab
    ids, segment = vocab.encode_pair("What is Ann holding?", "a red ball", max_len=24)
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Union

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

    # -- the tokenizer interface shared with PretrainedTokenizer ---------------------------------
    mask_id = MASK
    special_ids = (PAD, CLS, SEP)       # never masked by the masking noise

    def encode_pair(self, first: str, second: str, max_len: int) -> tuple[list[int], list[int]]:
        """``[CLS] first [SEP] second [SEP]`` (see :func:`pair`)."""
        return pair(self.encode(first), self.encode(second), max_len)

    def encode_sentence(self, text: str, max_len: int) -> list[int]:
        """``[CLS] text [SEP]`` cut to ``max_len``."""
        return ([CLS] + self.encode(text))[: max_len - 1] + [SEP]

    def unknown_share(self, texts: Iterable[str]) -> float:
        """Share of the words of ``texts`` this vocabulary does not know."""
        ids = [i for text in texts for i in self.encode(text)]
        return sum(1 for i in ids if i == UNK) / max(1, len(ids))

    def metadata(self) -> dict[str, str]:
        """What the weights file stores to rebuild this tokenizer."""
        return {"vocab": self.to_json()}

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


# ---- a local Hugging Face checkpoint's tokenizer ---------------------------------------------------

ID_OFFSET = 1
"""Ids of a pretrained tokenizer are stored shifted by one, so that 0 means padding for every tokenizer
(BERT pads with 0 but RoBERTa's 0 is ``<s>``); the pretrained encoder subtracts it again."""


def quiet_transformers() -> None:
    """No progress bars or advisory logging from ``transformers`` on cvsuite's output."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


class PretrainedTokenizer:
    """The fast tokenizer of a local checkpoint (its own ``[CLS] q [SEP] a [SEP]`` / ``<s> q </s></s> a </s>``
    template and longest-first truncation, as ``tokenizer(q, a, truncation=True)``), ids shifted by
    :data:`ID_OFFSET`."""

    def __init__(self, backend_json: str, pad: int, mask: int, unk: int | None, sep: int | None,
                 specials: list[int], name: str = "") -> None:
        from tokenizers import Tokenizer

        self.backend_json = backend_json
        self.backend = Tokenizer.from_str(backend_json)
        self.backend.no_padding()
        self.backend.no_truncation()
        self.hf_pad, self.hf_mask, self.hf_unk, self.hf_sep = pad, mask, unk, sep
        self.hf_specials = sorted(set(specials))
        self.name = name
        self.mask_id = mask + ID_OFFSET
        self.special_ids = (PAD, *(i + ID_OFFSET for i in self.hf_specials))
        self._truncation: int | None = None

    @classmethod
    def from_folder(cls, folder: str | Path) -> "PretrainedTokenizer":
        """Read the checkpoint's tokenizer (``local_files_only=True``: never a download)."""
        from transformers import AutoTokenizer

        quiet_transformers()
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ValueError("its tokenizer has no fast (tokenizers) form")
        missing = [name for name in ("pad", "mask") if getattr(tokenizer, f"{name}_token_id") is None]
        if missing:
            raise ValueError(f"its tokenizer has no {' / '.join(missing)} token (the masking noise and padding need them)")
        return cls(backend.to_str(), tokenizer.pad_token_id, tokenizer.mask_token_id, tokenizer.unk_token_id,
                   tokenizer.sep_token_id, list(tokenizer.all_special_ids), Path(folder).name)

    def metadata(self) -> dict[str, str]:
        return {"text_tokenizer": json.dumps({"backend": self.backend_json, "pad": self.hf_pad, "mask": self.hf_mask,
                                              "unk": self.hf_unk, "sep": self.hf_sep, "specials": self.hf_specials,
                                              "name": self.name})}

    @classmethod
    def from_metadata(cls, text: str) -> "PretrainedTokenizer":
        data = json.loads(text)
        return cls(data["backend"], int(data["pad"]), int(data["mask"]), data.get("unk"), data.get("sep"),
                   [int(i) for i in data["specials"]], str(data.get("name", "")))

    def __len__(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True) + ID_OFFSET

    def _truncate_to(self, max_len: int) -> None:
        if self._truncation != max_len:
            self.backend.enable_truncation(max_len, strategy="longest_first")
            self._truncation = max_len

    def encode_pair(self, first: str, second: str, max_len: int) -> tuple[list[int], list[int]]:
        """The checkpoint's pair template; segment is 1 on the tokens of ``second``."""
        self._truncate_to(max_len)
        encoding = self.backend.encode(first, second)
        return ([i + ID_OFFSET for i in encoding.ids],
                [int(s == 1) for s in encoding.sequence_ids])

    def encode_sentence(self, text: str, max_len: int) -> list[int]:
        self._truncate_to(max_len)
        return [i + ID_OFFSET for i in self.backend.encode(text).ids]

    def unknown_share(self, texts: Iterable[str]) -> float:
        """Share of (sub)word pieces mapped to the unknown token (sub-word tokenizers rarely need it)."""
        ids = [i for text in texts for i in self.backend.encode(text, add_special_tokens=False).ids]
        return sum(1 for i in ids if i == self.hf_unk) / max(1, len(ids))


Tokenizer = Union[Vocab, PretrainedTokenizer]


def tokenizer_from_metadata(meta: dict[str, str]) -> Tokenizer:
    """The tokenizer a weights file was trained with (``vocab`` or ``text_tokenizer`` metadata)."""
    if "text_tokenizer" in meta:
        return PretrainedTokenizer.from_metadata(meta["text_tokenizer"])
    return Vocab.from_json(meta["vocab"])
