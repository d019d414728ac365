"""Turn the evaluation report dict into PNG figures for people.

Plain functions used by the Evaluate stage: `plot_learning_curve` and
`plot_sample_metrics` (the Markdown page is `markdown.render_markdown`).  Figures are drawn with the
non-interactive Agg backend (the pipeline runs headless) and written through
`atomic_path`, so a crash never leaves a half-written PNG under its final name.
"""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # before pyplot: worker processes have no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from stages.atomic import atomic_path  # noqa: E402
from stages.report import is_finite  # noqa: E402

__all__ = ["plot_learning_curve", "plot_sample_metrics"]

DPI = 100
CURVE_SIZE_IN = (12.0, 4.5)
METRIC_COLS = 4
METRIC_WIDTH_IN = 12.0
METRIC_ROW_IN = 1.7
METRIC_HEADER_IN = 1.0
Y_HEADROOM = 1.15  # the y-axis stops this far above the highest plotted loss

# Plotted bottom to top, so the model sits on top next to the subplot title.
KINDS = (("floor", "floor (n-gram samples)", "#9e9e9e"),
         ("reference", "reference (real held-out text)", "#2e7d32"),
         ("model", "model", "#1565c0"))
BAND_ALPHA = 0.22  # the reference band: shaded, light enough for the bars to read on top
BASELINE_COLOURS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")

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
            if is_finite(r.get(k))]
    finite_base = [b for b in baselines.values() if is_finite(b)]
    hi = max(vals or finite_base or [1.0]) * Y_HEADROOM
    lo = min(vals + [b for b in finite_base if b <= hi] or [0.0])
    pad = 0.05 * max(hi - lo, 1e-6)
    return max(0.0, lo - pad), hi


def _draw_curves(ax, rows: list[dict], xs: list[float]) -> None:
    """Training and validation loss against `xs`; markers keep single points visible."""
    for key, label, colour, lw in (("train_loss", "training loss", "#ff7f0e", 1.2),
                                   ("val_nats_per_char", "validation loss", "#1f77b4", 1.8)):
        points = [(x, r[key]) for x, r in zip(xs, rows) if is_finite(r.get(key))]
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
        if not is_finite(value):
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
    return [n for n in names if any(is_finite((samples.get(k) or {}).get(n)) for k in samples)]


def _band(samples: dict, name: str) -> list[float] | None:
    """The metric's reference band [p5, p95] if the report has a finite one."""
    band = (samples.get("reference_band") or {}).get(name)
    return [float(b) for b in band] if band and all(is_finite(b) for b in band) else None


def _metric_panel(ax, name: str, samples: dict[str, dict[str, float]]) -> None:
    """One metric as three horizontal bars over the shaded reference band, its median dashed."""
    values = [(samples.get(kind) or {}).get(name) for kind, _, _ in KINDS]
    band = _band(samples, name)
    finite = [float(v) for v in values if is_finite(v)] + (band or [])
    if band:  # drawn first, so the bars sit on top of it
        ax.axvspan(*band, color=KINDS[1][2], alpha=BAND_ALPHA, lw=0)
    for y, (value, (_, _, colour)) in enumerate(zip(values, KINDS)):
        if is_finite(value):
            ax.barh(y, value, color=colour, height=0.7)
            # The white box keeps the reference line from striking through the number.
            ax.text(value, y, f" {value:.3g}", va="center", fontsize=8,
                    bbox={"fc": "white", "ec": "none", "pad": 0.3, "alpha": 0.8})
        else:
            ax.text(0, y, " n/a", va="center", fontsize=8, color="#666666")
    ref = values[1]
    if is_finite(ref):
        ax.axvline(ref, color=KINDS[1][2], ls="--", lw=1.2)
    if band:  # whiskers on the reference bar: a narrow band stays visible over the bars
        ax.plot(band, [1, 1], color="black", lw=1.2, zorder=3)
        ax.vlines(band, 0.75, 1.25, color="black", lw=1.2, zorder=3)
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
    Each subplot shows the three values with the reference median as a dashed
    line over the shaded reference band (`samples["reference_band"]`: metric ->
    [p5, p95]), so a reader sees whether the model sits inside the spread of
    real text or near the n-gram floor.  NaN/None values are shown as "n/a"; metrics with no value are skipped.
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
    if samples.get("reference_band"):
        handles.append(Patch(color=KINDS[1][2], alpha=BAND_ALPHA,
                             label="reference band (5th–95th percentile of real text)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9,
               frameon=False)
    fig.suptitle(title or "Sample metrics: model against reference and n-gram floor")
    _save(fig, path)
