"""Character vocabulary: ids for every character of the corpus.

Policy: the vocabulary is built from the whole downloaded corpus (train and
validation splits together), so every corpus character has an id. A character
that occurs only in the validation split therefore still gets an id; the
evaluation counts its (poor) predictions instead of dropping it. Text from
outside the corpus, such as a priming string for sampling, must use known
characters: an unknown one is an error by default (`unknown="skip"` drops it).

Ids follow codepoint order, so the same character set always gives the same ids
and the same `fingerprint`, whatever order the corpus was read in.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable

import numpy as np

from stages.atomic import atomic_write_json
from stages.errors import UserError

MAX_VOCAB = 1 << 16  # token ids are stored as uint16 at most


def count_chars(path: str | os.PathLike, chunk_chars: int = 1 << 20, progress=None) -> Counter:
    """Count each character of the UTF-8 text file at `path`, reading it in chunks.

    `progress(n)` is called after every `n` bytes read.
    """
    # Counted as codepoints with np.bincount (a Counter over characters runs at ~20 MB/s);
    # the rare codepoints above the first 256 are counted per chunk with np.unique.
    low, high = np.zeros(256, np.int64), Counter()
    decoder = codecs.getincrementaldecoder("utf-8")()   # bytes in, so progress is exact
    try:
        with open(path, "rb") as fh:
            while True:
                raw = fh.read(chunk_chars)
                chunk = decoder.decode(raw, final=not raw)
                _count_codes(np.frombuffer(chunk.encode("utf-32-le", "surrogatepass"), dtype="<u4"), low, high)
                if not raw:
                    break
                if progress:
                    progress(len(raw))
    except UnicodeDecodeError as exc:
        raise UserError(f"corpus {path} is not valid UTF-8 ({exc.reason}): delete it and rerun the download") from None
    counts = Counter({chr(c): int(n) for c, n in enumerate(low.tolist()) if n})
    counts.update(high)
    return counts


def _count_codes(codes: np.ndarray, low: np.ndarray, high: Counter) -> None:
    small = codes < 256
    if small.all():
        low += np.bincount(codes, minlength=256)
        return
    low += np.bincount(codes[small], minlength=256)
    values, n = np.unique(codes[~small], return_counts=True)
    high.update(dict(zip(map(chr, values.tolist()), n.tolist())))


@dataclass(frozen=True)
class Vocab:
    """An ordered character set; a character's id is its position in `chars`."""

    chars: tuple[str, ...]
    counts: tuple[int, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if any(len(c) != 1 for c in self.chars) or len(set(self.chars)) != len(self.chars):
            raise ValueError("Vocab.chars must be distinct single characters")
        if list(self.chars) != sorted(self.chars):
            raise ValueError("Vocab.chars must be sorted by codepoint")

    @property
    def size(self) -> int:
        """Number of ids."""
        return len(self.chars)

    @cached_property
    def stoi(self) -> dict[str, int]:
        """Character -> id."""
        return {c: i for i, c in enumerate(self.chars)}

    @cached_property
    def itos(self) -> dict[int, str]:
        """Id -> character."""
        return dict(enumerate(self.chars))

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the ordered characters: equal fingerprints mean equal ids."""
        return hashlib.sha256("".join(self.chars).encode("utf-8")).hexdigest()

    @property
    def token_dtype(self) -> np.dtype:
        """Smallest unsigned dtype holding every id: uint8 up to 256 chars, else uint16."""
        return np.dtype(np.uint8 if self.size <= 256 else "<u2")

    @cached_property
    def _lookup(self) -> np.ndarray:
        # Codepoint -> id table (-1 = unknown): encoding becomes one vectorized gather.
        table = np.full(ord(self.chars[-1]) + 1 if self.chars else 0, -1, dtype=np.int32)
        table[[ord(c) for c in self.chars]] = np.arange(self.size, dtype=np.int32)
        return table

    def encode(self, text: str, unknown: str = "error") -> np.ndarray:
        """Return the ids of `text` as `token_dtype`.

        `unknown="error"` raises UserError listing characters missing from the
        vocabulary; `unknown="skip"` drops them.
        """
        if unknown not in ("error", "skip"):
            raise ValueError(f"unknown must be 'error' or 'skip', not {unknown!r}")
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        table = self._lookup
        if len(codes) and len(table) and codes.max() < len(table):   # the usual case: one gather
            ids = table[codes]
        else:
            ids = np.full(codes.shape, -1, dtype=np.int32)
            known = codes < len(table)
            ids[known] = table[codes[known]]
        if (ids < 0).any():
            if unknown == "error":
                missing = sorted({chr(c) for c in codes[ids < 0]})
                raise UserError(
                    f"text has characters not in the corpus vocabulary: {', '.join(map(repr, missing))}; "
                    "remove them, or add text containing them to the corpus and rerun"
                )
            ids = ids[ids >= 0]
        return ids.astype(self.token_dtype)

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """Return the text for `ids`; an id outside the vocabulary raises ValueError."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"ids must be in [0, {self.size}), got {ids.min()}..{ids.max()}")
        return "".join([self.chars[i] for i in ids.tolist()])

    def to_json(self) -> str:
        """Serialize as JSON with both directions and the character counts."""
        return json.dumps(self._as_dict(), ensure_ascii=False, indent=1)

    def _as_dict(self) -> dict:
        counts = dict(zip(self.chars, self.counts)) if self.counts else {}
        return {
            "chars": list(self.chars),
            "stoi": self.stoi,
            "itos": {str(i): c for i, c in self.itos.items()},
            "counts": counts,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_json(cls, data: str | dict) -> "Vocab":
        """Rebuild a Vocab from `to_json` output; inconsistent data raises ValueError."""
        obj = json.loads(data) if isinstance(data, str) else data
        chars = tuple(obj["chars"])
        vocab = cls(chars, tuple(int(obj["counts"][c]) for c in chars) if obj.get("counts") else ())
        itos = {int(i): c for i, c in obj["itos"].items()}
        if obj["stoi"] != vocab.stoi or itos != vocab.itos:
            raise ValueError("stoi/itos disagree with chars")
        if obj.get("fingerprint", vocab.fingerprint) != vocab.fingerprint:
            raise ValueError("fingerprint does not match chars")
        return vocab

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary JSON to `path` atomically."""
        atomic_write_json(path, self._as_dict(), indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        """Read a vocabulary saved by `save`; a missing or damaged file raises UserError."""
        path = Path(path)
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"vocabulary file {path} is missing: rerun the pipeline to build it") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise UserError(
                f"vocabulary file {path} is damaged ({reason}): delete the folder {path.parent} and rerun the pipeline"
            ) from None


def build_vocab(counts: Counter | dict) -> Vocab:
    """Build the Vocab of every character in `counts` (chars with a zero count are left out)."""
    chars = tuple(sorted(c for c, n in counts.items() if n > 0))
    if not chars:
        raise UserError("the corpus is empty: check the corpus sources in the config and rerun the download")
    if len(chars) > MAX_VOCAB:
        raise UserError(f"the corpus has {len(chars)} distinct characters, more than {MAX_VOCAB}: use a smaller corpus")
    return Vocab(chars, tuple(int(counts[c]) for c in chars))
