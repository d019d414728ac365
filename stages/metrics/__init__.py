"""Sample-quality metrics: one registry of named metrics over a shared context.

Each registered metric is a function `(samples: list[str], ctx: MetricContext)
-> float`.  The names are stable (they become column names in reports).
Other packages add metrics through the entry-point group
`shakespeare_cifg.metrics`: each entry point's name is the metric name and it
loads such a function.  The plain metric functions live in `text`,
`play` and `bleu` (this package) and are re-exported here.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import numpy as np

from stages.errors import UserError
from stages.metrics.bleu import bleu4, reference_pool, self_bleu
from stages.metrics.play import max_line_length, play_format, speakers
from stages.metrics.text import (TrainIndex, distinct_n, in_vocab_word_rate, js_divergence,
                                 ngram_nll, novelty, repetition, word_set)

ENTRY_POINT_GROUP = "shakespeare_cifg.metrics"
NOVELTY_NS = (5, 10, 20)

__all__ = ["METRICS", "MetricContext", "TrainIndex", "bleu4", "compute_all", "distinct_n",
           "in_vocab_word_rate", "js_divergence", "load_plugin_metrics", "max_line_length",
           "ngram_nll", "novelty", "play_format", "register_metric", "repetition", "self_bleu",
           "speakers", "word_set"]


@dataclass
class MetricContext:
    """Everything the metrics need from training and held-out data, built once."""

    train_words: set[str]
    train_index: TrainIndex
    train_speakers: set[str]
    max_line_len: int
    heldout_text: str
    heldout_lines: list[str]
    lm: object  # a fitted stages.ngram.KneserNeyLM
    encode: Callable[[str], np.ndarray]
    # text -> the text before it (prime, preceding held-out text): the n-gram's context.
    before: dict[str, str] = field(default_factory=dict)
    # The held-out lines counted once for BLEU: many text sets are scored against them.
    bleu_pool: object = None

    @classmethod
    def build(cls, train_text: str, heldout_text: str, lm, encode) -> "MetricContext":
        """Index the training text and split the held-out text into lines."""
        if not train_text or not heldout_text:
            raise UserError("metrics need non-empty training and held-out texts; "
                            "check the data split")
        lines = [line for line in heldout_text.split("\n") if line.strip()]
        return cls(word_set(train_text), TrainIndex(train_text, NOVELTY_NS),
                   speakers(train_text), max_line_length(train_text), heldout_text,
                   lines, lm, encode, bleu_pool=reference_pool(lines))


Metric = Callable[[list[str], MetricContext], float]
METRICS: dict[str, Metric] = {}


def register_metric(name: str) -> Callable[[Metric], Metric]:
    """Decorator adding `fn(samples, ctx) -> float` to METRICS under `name`."""
    def add(fn: Metric) -> Metric:
        """Store `fn`; a second, different function under one name is a clash."""
        if name in METRICS and METRICS[name] is not fn:
            raise UserError(f"metric name {name!r} is registered twice; rename one of them")
        METRICS[name] = fn
        return fn
    return add


def _joined(samples: list[str]) -> str:
    """Samples as one text; a blank line keeps them separate turns."""
    return "\n\n".join(samples)


def _sample_lines(samples: list[str]) -> list[str]:
    """Every line of every sample (the BLEU candidates)."""
    return [line for s in samples for line in s.split("\n")]


def _register_builtins() -> None:
    """Register the built-in metrics under their stable names."""
    register_metric("in_vocab_word_rate")(
        lambda s, c: in_vocab_word_rate(_joined(s), c.train_words))
    for n in NOVELTY_NS:
        register_metric(f"novelty_{n}")(lambda s, c, n=n: novelty(s, c.train_index, n))
    for n in (1, 2, 3):
        register_metric(f"distinct_{n}")(lambda s, c, n=n: distinct_n(s, n))
    register_metric("repetition")(
        lambda s, c: float(np.mean([repetition(x) for x in s])) if s else float("nan"))
    for n in (1, 2, 3, 4):
        register_metric(f"js_{n}")(lambda s, c, n=n: js_divergence(s, c.heldout_text, n))
    register_metric("ngram_nll")(lambda s, c: ngram_nll(s, c.lm, c.encode, c.before))
    for key in ("speaker_line_share", "known_speaker_share", "overlong_line_share",
                "malformed_turn_share"):
        register_metric(key)(lambda s, c, key=key: play_format(
            _joined(s), c.train_speakers, c.max_line_len)[key])
    register_metric("bleu4")(lambda s, c: bleu4(_sample_lines(s), c.bleu_pool or c.heldout_lines))
    register_metric("self_bleu")(lambda s, c: self_bleu(s))


_register_builtins()
_plugins_loaded = False


def load_plugin_metrics() -> None:
    """Register metrics from the `shakespeare_cifg.metrics` entry points (once)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            fn = ep.load()
        except Exception as exc:  # a broken plugin should say which one it is
            raise UserError(f"metric plugin {ep.name!r} ({ep.value}) failed to load: {exc}; "
                            "fix or uninstall that package") from exc
        register_metric(ep.name)(fn)
    _plugins_loaded = True


def compute_all(samples: list[str], ctx: MetricContext) -> dict[str, float]:
    """Every registered metric (built-in and plugin) of `samples`, by name."""
    if isinstance(samples, str):
        raise UserError("compute_all takes a list of sample strings; wrap one sample in [...]")
    load_plugin_metrics()
    return {name: float(fn(samples, ctx)) for name, fn in METRICS.items()}
