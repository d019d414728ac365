"""UTF-8 text from bytes, one way for the whole project: the corpus sources and `score` read
files through `decode_utf8`, so a file that Download reads cleanly scores the same way; plus
`TallyWriter` (characters and sha256 of what passes through) and `sha256_file`."""
from __future__ import annotations

import codecs
import hashlib
import itertools
from functools import partial
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from stages.errors import UserError

CHUNK_BYTES = 1 << 20
SOURCES_FIX = "convert it to UTF-8 plain text or remove it from the sources"


def decode_utf8(chunks: Iterable[bytes], label: str, fix: str = SOURCES_FIX) -> Iterator[str]:
    """Decode UTF-8 byte chunks (a leading BOM is dropped), turning CRLF into LF.

    A bad or NUL byte is a UserError naming `label`, the byte's offset and `fix`."""
    # Plain utf-8 rather than utf-8-sig, whose error positions skip the BOM.
    decoder = codecs.getincrementaldecoder("utf-8")()
    consumed, held_cr, started = 0, "", False
    for chunk in itertools.chain(chunks, [None]):  # None: flush the decoder
        data = chunk or b""
        nul = data.find(b"\0")
        pending = len(decoder.getstate()[0])
        try:   # up to a NUL only, so that a bad byte before it is the one reported
            text = held_cr + decoder.decode(data if nul < 0 else data[:nul], final=chunk is None or nul >= 0)
        except UnicodeDecodeError as exc:
            raise _not_utf8(label, consumed - pending + exc.start, fix) from None
        if nul >= 0:
            raise _not_utf8(label, consumed + nul, fix)
        consumed += len(data)
        if text and not started:
            started, text = True, text.removeprefix("\ufeff")
        # A CR at a chunk end may pair with an LF at the start of the next chunk.
        held_cr = "\r" if text.endswith("\r") and chunk is not None else ""
        yield text[: len(text) - len(held_cr)].replace("\r\n", "\n")


def _not_utf8(label: str, offset: int, fix: str) -> UserError:
    return UserError(f"{label} is not UTF-8 text (bad or NUL byte at offset {offset}): {fix}")


def file_chunks(fh: IO[bytes]) -> Iterator[bytes]:
    """A binary file's bytes, CHUNK_BYTES at a time."""
    return iter(partial(fh.read, CHUNK_BYTES), b"")


class TallyWriter:
    """Pass text through to `out` while counting chars and hashing its UTF-8 bytes.

    `out` is another TallyWriter or a binary file: the text is encoded once, and the bytes
    are handed down with it (encoding it again at every level cost a third of Download's time).
    """

    def __init__(self, out: Any, hashed: bool = True):
        self.out, self.chars, self.last = out, 0, ""
        self._hash = hashlib.sha256() if hashed else None

    def write(self, text: str, data: bytes | None = None) -> int:
        if text:
            data = text.encode("utf-8") if data is None else data
            if isinstance(self.out, TallyWriter):
                self.out.write(text, data)
            else:
                self.out.write(data)
            self.chars += len(text)
            self.last = text[-1]
            if self._hash is not None:
                self._hash.update(data)
        return len(text)

    def end_line(self) -> None:
        """Start a new line unless nothing was written or the text ends with one."""
        if self.last not in ("", "\n"):
            self.write("\n")

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in file_chunks(fh):
            digest.update(chunk)
    return digest.hexdigest()
