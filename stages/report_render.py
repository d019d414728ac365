"""Turn the evaluation report dict into PNG figures and a Markdown page for people.

Plain functions used by the Evaluate stage: `plot_learning_curve`,
`plot_sample_metrics` and `render_markdown`.  Figures are drawn with the
non-interactive Agg backend (the pipeline runs headless) and written through
`atomic_path`, so a crash never leaves a half-written PNG under its final name.
"""
from __future__ import annotations

import math
import numbers
import re

import matplotlib

matplotlib.use("Agg")  # before pyplot: worker processes have no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from stages.atomic import atomic_path  # noqa: E402

__all__ = ["plot_learning_curve", "plot_sample_metrics", "render_markdown"]

DPI = 100
CURVE_SIZE_IN = (12.0, 4.5)
METRIC_COLS = 4
METRIC_WIDTH_IN = 12.0
METRIC_ROW_IN = 1.7
METRIC_HEADER_IN = 1.0
Y_HEADROOM = 1.15  # the y-axis stops this far above the highest plotted loss
EXCERPT_CHARS = 600
EXCERPT_COUNT = 3

# Plotted bottom to top, so the model sits on top next to the subplot title.
KINDS = (("floor", "floor (n-gram samples)", "#9e9e9e"),
         ("reference", "reference (real held-out text)", "#2e7d32"),
         ("model", "model", "#1565c0"))
BASELINE_COLOURS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")

HELDOUT_ORDER = ("lstm", "ngram", "unigram", "uniform")
HELDOUT_LABELS = {"lstm": "LSTM (this model)", "ngram": "{order}-gram Kneser-Ney"}

# Metric-name prefix -> what that family of metrics catches (first match wins).
METRIC_NOTES = {
    "novelty": "share of sample n-grams absent from the training text; low means copying.",
    "distinct": "share of distinct n-grams; low means repetitive, narrow output.",
    "repetition": "how much a sample repeats itself; high means loops.",
    "js_": "divergence of n-gram frequencies from held-out text; high means wrong statistics.",
    "ngram_nll": "n-gram model's nats/char on the sample; high is gibberish, low is bland.",
    "in_vocab": "share of words seen in training; low means invented words.",
    "speaker_line": "share of lines that are speaker headings; checks play layout.",
    "known_speaker": "share of speaker headings naming a real character.",
    "overlong_line": "share of lines longer than any training line; broken line structure.",
    "malformed_turn": "share of turns without a heading and speech; broken play layout.",
    "self_bleu": "BLEU of samples against each other; high means samples look alike.",
    "bleu": "n-gram overlap with held-out lines; rewards plausible local phrasing.",
}


def _finite(x) -> bool:
    """True for a real number (NumPy scalars too) that is not NaN/inf; None and bools are not."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _save(fig, path) -> None:
    """Write `fig` as PNG atomically and always release it (pyplot keeps figures alive)."""
    try:
        with atomic_path(path) as tmp:
            # The temp name ends in ".tmp", so the format must be given explicitly.
            fig.savefig(tmp, format="png", dpi=DPI)
    finally:
        plt.close(fig)


def _y_range(rows: list[dict], baselines: dict[str, float]) -> tuple[float, float]:
    """Y limits that show the curves in full; baselines far above are left out."""
    vals = [float(r.get(k)) for r in rows for k in ("val_nats_per_char", "train_loss")
            if _finite(r.get(k))]
    finite_base = [b for b in baselines.values() if _finite(b)]
    hi = max(vals or finite_base or [1.0]) * Y_HEADROOM
    lo = min(vals + [b for b in finite_base if b <= hi] or [0.0])
    pad = 0.05 * max(hi - lo, 1e-6)
    return max(0.0, lo - pad), hi


def _draw_curves(ax, rows: list[dict], xs: list[float]) -> None:
    """Training and validation loss against `xs`; markers keep single points visible."""
    for key, label, colour, lw in (("train_loss", "training loss", "#ff7f0e", 1.2),
                                   ("val_nats_per_char", "validation loss", "#1f77b4", 1.8)):
        points = [(x, r[key]) for x, r in zip(xs, rows) if _finite(r.get(key))]
        if points:  # training loss is None until the first training window ends
            ax.plot(*zip(*points), color=colour, marker="o", ms=3, lw=lw, label=label)
    if not rows:
        ax.text(0.5, 0.5, "no learning-curve points", ha="center", transform=ax.transAxes)


def _style_x(ax, xs: list[float], label: str, integer: bool) -> None:
    """Label the x-axis and start it just left of 0 (a lone point would get a +-0.05 axis)."""
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)
    span = max(xs, default=0.0) or 1.0
    ax.set_xlim(-0.02 * span, 1.03 * span)  # the margin keeps a marker at 0 whole
    if integer:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _draw_baselines(axes, baselines: dict[str, float], y_hi: float) -> list[Line2D]:
    """Dashed line per baseline; ones above the y range only get a legend entry."""
    handles = []
    for i, (name, value) in enumerate(baselines.items()):
        if not _finite(value):
            continue
        colour = BASELINE_COLOURS[i % len(BASELINE_COLOURS)]
        clipped = value > y_hi
        label = f"{name} ({value:.3f})" + (", above plot" if clipped else "")
        handles.append(Line2D([], [], color=colour, ls="--", lw=1.2, label=label))
        if not clipped:
            for ax in axes:
                ax.axhline(value, color=colour, ls="--", lw=1.2)
    return handles


def plot_learning_curve(rows: list[dict], baselines: dict[str, float], path) -> None:
    """Save a two-panel PNG of loss (nats/char) against step and training minutes.

    `rows` are learning-curve points with "step", "t" (training seconds),
    "train_loss" (may be None) and "val_nats_per_char".  Each baseline is a
    dashed horizontal line; baselines far above the curves would squash them,
    so they are named in the legend as "above plot" instead of drawn.
    """
    fig, axes = plt.subplots(1, 2, figsize=CURVE_SIZE_IN, dpi=DPI, sharey=True,
                             layout="constrained")
    steps = [r["step"] for r in rows]
    minutes = [r["t"] / 60.0 for r in rows]
    for ax, xs, xlabel in zip(axes, (steps, minutes), ("training step", "training time (min)")):
        _draw_curves(ax, rows, xs)
        _style_x(ax, xs, xlabel, integer=xlabel == "training step")
    axes[0].set_ylabel("loss (nats/char)")
    lo, hi = _y_range(rows, baselines)
    axes[0].set_ylim(lo, hi)
    handles = axes[0].get_legend_handles_labels()[0] + _draw_baselines(axes, baselines, hi)
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5),
                   fontsize=9, frameon=False)
    fig.suptitle("Learning curve: held-out (validation) and training loss")
    _save(fig, path)


def _metric_names(samples: dict[str, dict[str, float]]) -> list[str]:
    """Metric names with at least one finite value, in first-seen order (model first)."""
    names = dict.fromkeys(n for kind in ("model", "reference", "floor")
                          for n in (samples.get(kind) or {}))  # an ordered set
    return [n for n in names if any(_finite((samples.get(k) or {}).get(n)) for k in samples)]


def _metric_panel(ax, name: str, samples: dict[str, dict[str, float]]) -> None:
    """One metric as three horizontal bars, the reference value as a dashed line."""
    values = [(samples.get(kind) or {}).get(name) for kind, _, _ in KINDS]
    finite = [float(v) for v in values if _finite(v)]
    for y, (value, (_, _, colour)) in enumerate(zip(values, KINDS)):
        if _finite(value):
            ax.barh(y, value, color=colour, height=0.7)
            # The white box keeps the reference line from striking through the number.
            ax.text(value, y, f" {value:.3g}", va="center", fontsize=8,
                    bbox={"fc": "white", "ec": "none", "pad": 0.3, "alpha": 0.8})
        else:
            ax.text(0, y, " n/a", va="center", fontsize=8, color="#666666")
    ref = values[1]
    if _finite(ref):
        ax.axvline(ref, color=KINDS[1][2], ls="--", lw=1.2)
    lo, hi = min(finite + [0.0]), max(finite + [0.0])
    span = (hi - lo) or 1.0
    ax.set_xlim(lo - 0.02 * span if lo < 0 else 0.0, hi + 0.3 * span)  # room for labels
    ax.set_ylim(-0.6, len(KINDS) - 0.4)  # fixed, so an "n/a" row keeps its place
    ax.set_yticks(range(len(KINDS)), [k for k, _, _ in KINDS], fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(name, fontsize=10)


def plot_sample_metrics(samples: dict[str, dict[str, float]], path, title: str = "") -> None:
    """Save a PNG grid with one small bar chart per sample metric.

    `samples` maps kind ("model", "reference", "floor") -> metric -> value.
    Each subplot shows the three values with the reference as a dashed line,
    so a reader sees whether the model sits near real text or near the n-gram
    floor.  NaN/None values are shown as "n/a"; metrics with no value are skipped.
    """
    names = _metric_names(samples)
    nrows = max(1, math.ceil(len(names) / METRIC_COLS))
    fig, axes = plt.subplots(nrows, METRIC_COLS, squeeze=False, dpi=DPI, layout="constrained",
                             figsize=(METRIC_WIDTH_IN, METRIC_HEADER_IN + METRIC_ROW_IN * nrows))
    for ax, name in zip(axes.flat, names):
        _metric_panel(ax, name, samples)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if not names:
        axes[0, 0].text(0, 0.5, "no sample metrics", transform=axes[0, 0].transAxes)
    handles = [Line2D([], [], color=c, lw=6, label=label) for _, label, c in reversed(KINDS)]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=9, frameon=False)
    fig.suptitle(title or "Sample metrics: model against reference and n-gram floor")
    _save(fig, path)


HOW_TO_READ = (
    "**How to read this.** Held-out likelihood (nats per character on text the model "
    "never trained on; lower is better) is the primary measure. The sample metrics "
    "describe generated text and have no \"higher is better\": read each against the "
    "*reference* band (real held-out text cut to the same length as the samples) and "
    "the *floor* (samples from the n-gram baseline). A model near the reference writes "
    "text with Shakespeare's statistics; a model near the floor is no better than the "
    "n-gram.")


def _num(x, spec: str = ".4g") -> str:
    """`x` formatted with `spec` (default 4 significant digits), or "n/a" for missing/NaN."""
    return format(float(x), spec) if _finite(x) else "n/a"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of a Markdown (GFM) table; the first column left-, the rest right-aligned."""
    # In a cell a bare "|" would split the cell and a newline the row.
    cells = [[str(c).replace("|", "\\|").replace("\n", " ") for c in row] for row in rows]
    return ["| " + " | ".join(header) + " |",
            "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"] + [
        "| " + " | ".join(row) + " |" for row in cells]


def _image(images: dict[str, str], key: str, alt: str) -> list[str]:
    """An embedded image line (plus blank line) if `images` has `key`, else nothing."""
    return [f"![{alt}]({images[key]})", ""] if images.get(key) else []


def _heldout_section(report: dict) -> list[str]:
    """The held-out likelihood table, the verdict and the LSTM protocol note."""
    heldout = report.get("heldout") or {}
    names = sorted(heldout, key=lambda m: (HELDOUT_ORDER + (m,)).index(m))  # extras last
    columns = (("nats_per_char", ".4f"), ("bits_per_char", ".3f"), ("perplexity", ".2f"))
    rows = [[HELDOUT_LABELS.get(m, m).format(order=heldout[m].get("order") or "n")]
            + [_num(heldout[m].get(k), spec) for k, spec in columns] for m in names]
    out = ["## Held-out likelihood", ""]
    out += _table(["model", "nats/char", "bits/char", "perplexity"], rows) if rows else [
        "No held-out results."]
    out.append("")
    if report.get("heldout_verdict"):
        out += [f"**Verdict:** {report['heldout_verdict']}", ""]
    protocol = (heldout.get("lstm") or {}).get("protocol")
    if protocol:
        out += [f"*LSTM evaluation protocol:* {protocol}", ""]
    return out


def _metric_note(name: str) -> str | None:
    """What the metric's family catches, or None for an unknown (plugin) metric."""
    return next((note for prefix, note in METRIC_NOTES.items() if name.startswith(prefix)), None)


def _metrics_table(samples: dict, heading: str) -> list[str]:
    """A "metric | model | reference | floor" table for one temperature."""
    names = list(dict.fromkeys(name for kind in ("model", "reference", "floor")
                               for name in (samples.get(kind) or {})))
    rows = [[f"`{name}`"] + [_num((samples.get(kind) or {}).get(name))
                             for kind in ("model", "reference", "floor")] for name in names]
    return [f"### {heading}", ""] + _table(["metric", "model", "reference", "floor"], rows) + [""]


def _notes_section(names: list[str]) -> list[str]:
    """One line per metric family present, naming its metrics and what they catch."""
    families: dict[str, list[str]] = {}  # note -> metric names, in first-seen order
    for name in dict.fromkeys(names):
        if (note := _metric_note(name)) is not None:
            families.setdefault(note, []).append(f"`{name}`")
    if not families:
        return []
    return ["What each metric family catches:", ""] + [
        f"- {', '.join(members)}: {note}" for note, members in families.items()] + [""]


def _samples_section(report: dict, images: dict[str, str]) -> list[str]:
    """Sample-metric tables (configured temperature, then 1.0), notes and images."""
    temperature = (report.get("sampling") or {}).get("temperature")
    t_label = f"temperature {temperature}" if temperature is not None else "configured temperature"
    parts = [("samples", f"Samples at {t_label}"), ("samples_t1", "Samples at temperature 1.0")]
    out, names = ["## Sample metrics", ""], []
    for key, heading in parts:
        samples = report.get(key)
        if not samples:
            continue
        out += _metrics_table(samples, heading)
        out += _image(images, key, f"sample metrics, {heading.lower()}")
        names += [n for kind in samples.values() for n in (kind or {})]
    if len(out) == 2:
        return []
    return out + _notes_section(names)


def _excerpts_section(texts: list[str]) -> list[str]:
    """The first few model samples in code blocks, each cut to EXCERPT_CHARS."""
    if not texts:
        return []
    out = ["## Sample excerpts", ""]
    for i, text in enumerate(texts[:EXCERPT_COUNT], 1):
        cut = text[:EXCERPT_CHARS] + ("\n[... truncated]" if len(text) > EXCERPT_CHARS else "")
        # The fence must be longer than any backtick run inside the sample.
        fence = "`" * max([3] + [len(m) + 1 for m in re.findall(r"`+", cut)])
        out += [f"Sample {i}:", "", f"{fence}text", cut.rstrip("\n"), fence, ""]
    return out


def _provenance_section(report: dict) -> list[str]:
    """Stage fingerprints and run times, so a reader can tell which run made this."""
    prov = report.get("provenance") or {}
    if not prov:
        return []
    rows = [[stage, str(info.get("fingerprint") or "")[:12] or "n/a",
             _num(info.get("seconds"), ".1f")] for stage, info in prov.items()]
    return ["## Provenance", ""] + _table(["stage", "fingerprint", "seconds"], rows) + [""]


def _model_line(model: dict) -> list[str]:
    """One sentence on model size and training cost."""
    if not model:
        return []
    minutes = model["train_seconds"] / 60 if _finite(model.get("train_seconds")) else None
    return [f"**Model:** {_num(model.get('params'), ',.0f')} parameters, "
            f"{_num(model.get('steps'), ',.0f')} training steps, {_num(minutes, '.1f')} min "
            f"of training at {_num(model.get('chars_per_s'), ',.0f')} chars/s.", ""]


def render_markdown(report: dict, images: dict[str, str]) -> str:
    """Markdown page for people from the evaluation `report` dict.

    `images` maps "learning_curve", "samples" and "samples_t1" to image file
    names relative to the Markdown file; a missing key means no image.
    Missing optional parts of the report are left out, NaN values read "n/a".
    """
    out = ["# Character-level Shakespeare model: evaluation report", "", HOW_TO_READ, ""]
    out += _heldout_section(report)
    if images.get("learning_curve"):
        out += ["## Learning curve", ""] + _image(images, "learning_curve", "learning curve")
    out += _samples_section(report, images)
    out += _excerpts_section(report.get("sample_texts") or [])
    out += _provenance_section(report)
    out += _model_line(report.get("model") or {})
    return "\n".join(out).rstrip("\n") + "\n"
