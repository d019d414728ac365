"""Checks that a sample keeps the tiny-shakespeare play layout.

The layout: a turn is a block of lines between blank lines; it opens with a
speaker line "NAME:" alone on its line, followed by one or more speech lines.
"""
from __future__ import annotations

import re

from stages.metrics.text import ratio

SPEAKER_RE = re.compile(r"^[A-Z][A-Za-z' ]*:$")


def _turns(text: str) -> list[list[str]]:
    """The text's blocks of non-blank lines, split at (runs of) blank lines."""
    turns: list[list[str]] = [[]]
    for line in text.split("\n"):
        if line.strip():
            turns[-1].append(line)
        elif turns[-1]:
            turns.append([])
    return [t for t in turns if t]


def speakers(train_text: str) -> set[str]:
    """Names (without the colon) of all speaker lines in the training text."""
    return {line[:-1] for line in train_text.split("\n") if SPEAKER_RE.match(line)}


def max_line_length(text: str) -> int:
    """Length in chars of the longest line of `text`."""
    return max((len(line) for line in text.split("\n")), default=0)


def _is_malformed(turn: list[str]) -> bool:
    """A turn must open with a speaker line and hold at least one speech line."""
    return not SPEAKER_RE.match(turn[0]) or all(SPEAKER_RE.match(x) for x in turn)


def play_format(text: str, train_speakers: set[str], max_line_len: int) -> dict[str, float]:
    """Layout shares of a sample; NaN where the denominator is empty.

    - speaker_line_share: speaker lines / non-blank lines
    - known_speaker_share: speaker lines whose name occurs in training / speaker lines
    - overlong_line_share: non-blank lines longer than `max_line_len` / non-blank lines
    - malformed_turn_share: turns not opening with a speaker line, or without
      a speech line / turns.  A sample cut mid-turn counts its partial first
      and last turns too, so compare models on samples cut the same way.
    """
    turns = _turns(text)
    lines = [line for turn in turns for line in turn]
    names = [line[:-1] for line in lines if SPEAKER_RE.match(line)]
    return {
        "speaker_line_share": ratio(len(names), len(lines)),
        "known_speaker_share": ratio(sum(n in train_speakers for n in names), len(names)),
        "overlong_line_share": ratio(sum(len(x) > max_line_len for x in lines), len(lines)),
        "malformed_turn_share": ratio(sum(map(_is_malformed, turns)), len(turns)),
    }
