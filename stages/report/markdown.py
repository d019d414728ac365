"""The evaluation report as a Markdown page for people (`render_markdown`)."""
from __future__ import annotations

import re

from stages.metrics.bands import position
from stages.report import is_finite

EXCERPT_CHARS = 600
EXCERPT_COUNT = 3

HELDOUT_ORDER = ("lstm", "lstm_dynamic", "lstm_cache", "lstm_dynamic_cache", "ngram", "unigram",
                 "uniform")
HELDOUT_LABELS = {"lstm": "LSTM (this model)", "ngram": "{order}-gram Kneser-Ney",
                  "lstm_window256": "LSTM (256-character windows)",
                  "lstm_dynamic": "LSTM + dynamic evaluation", "lstm_cache": "LSTM + cache",
                  "lstm_dynamic_cache": "LSTM + dynamic evaluation + cache"}
ADAPTIVE = ("lstm_dynamic", "lstm_cache", "lstm_dynamic_cache")

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


HOW_TO_READ = (
    "**How to read this.** Held-out likelihood (nats per character on text the model "
    "never trained on; lower is better) is the primary measure. The sample metrics "
    "describe generated text and have no \"higher is better\": read each against the "
    "*reference band* (the 5th to 95th percentile of the same metric over many sets of "
    "real held-out text, each set as many texts as the samples and as long) and the "
    "*floor* (samples from the n-gram baseline). A model inside the band writes text that "
    "real text of that size could have produced; outside it, the gap is larger than real "
    "text's own spread. Each 95% interval on a held-out loss says how much it would move "
    "on other text of the same kind (not over training seeds).")


def _num(x, spec: str = ".4g") -> str:
    """`x` formatted with `spec` (default 4 significant digits), or "n/a" for missing/NaN."""
    return format(float(x), spec) if is_finite(x) else "n/a"


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


def _interval(ci, spec: str = ".4f") -> str:
    """"lo – hi" for a [lo, hi] interval, "n/a" when there is none."""
    if not ci or not all(is_finite(x) for x in ci):
        return "n/a"
    return f"{format(float(ci[0]), spec)} – {format(float(ci[1]), spec)}"


def _heldout_section(report: dict) -> list[str]:
    """The held-out likelihood table with intervals, the paired difference, verdict, protocol."""
    heldout = report.get("heldout") or {}
    models = [m for m in heldout if m != "difference"]
    names = sorted(models, key=lambda m: (HELDOUT_ORDER + (m,)).index(m))  # extras last
    columns = (("nats_per_char", ".4f"), ("bits_per_char", ".3f"), ("perplexity", ".2f"))
    rows = [[HELDOUT_LABELS.get(m, m).format(order=heldout[m].get("order") or "n")]
            + [_num(heldout[m].get(k), spec) for k, spec in columns]
            + [_interval(heldout[m].get("ci95"))] for m in names]
    out = ["## Held-out likelihood (test split)", ""]
    out += _table(["model", "nats/char", "bits/char", "perplexity", "95% interval (nats/char)"],
                  rows) if rows else ["No held-out results."]
    out.append("")
    diff = (heldout.get("difference") or {}).get("lstm_minus_ngram")
    if diff:
        out += [f"*LSTM − n-gram, paired over the same blocks:* {_num(diff.get('mean'), '+.4f')} "
                f"nats/char, 95% interval {_interval(diff.get('ci95'), '+.4f')}.", ""]
    if report.get("heldout_verdict"):
        out += [f"**Verdict:** {report['heldout_verdict']}", ""]
    protocol = (heldout.get("lstm") or {}).get("protocol")
    if protocol:
        out += [f"*LSTM evaluation protocol:* {protocol}", ""]
    out += _adaptive_lines(heldout, report.get("adaptive_seconds") or {})
    scope = (report.get("heldout_scope") or {}).get("text")
    if scope:
        out += [f"*Characters:* {scope}.", ""]
    tail = report.get("validation")
    if tail:
        out += [f"*Static LSTM, {tail['label']}:* {_num(tail.get('nats_per_char'), '.4f')} nats/char "
                f"({_num(tail.get('bits_per_char'), '.3f')} bits/char), 95% interval "
                f"{_interval(tail.get('ci95'))}; {tail['scope']}. For comparison with published "
                "figures only: the checkpoint was chosen on part of this text.", ""]
    return out


def _adaptive_lines(heldout: dict, seconds: dict) -> list[str]:
    """For each row that adapts to the scored text: its protocol, gain over the static row, time."""
    out = []
    for name in ADAPTIVE:
        row = heldout.get(name)
        if not row:
            continue
        diff = (heldout.get("difference") or {}).get(f"{name}_minus_lstm") or {}
        out += [f"*{HELDOUT_LABELS[name]}:* {row.get('protocol', '')}. Paired difference to the "
                f"static LSTM row: {_num(diff.get('mean'), '+.4f')} nats/char, 95% interval "
                f"{_interval(diff.get('ci95'), '+.4f')}; added {_num(seconds.get(name), '.1f')} s "
                "to Evaluate. It does not replace the static figure: it is scored by a model that "
                "keeps learning from the test text as it reads it.", ""]
    return out


def _metric_note(name: str) -> str | None:
    """What the metric's family catches, or None for an unknown (plugin) metric."""
    return next((note for prefix, note in METRIC_NOTES.items() if name.startswith(prefix)), None)


def _metrics_table(samples: dict, heading: str) -> list[str]:
    """A "metric | model | model vs band | band | reference | floor" table for one temperature."""
    names = list(dict.fromkeys(name for kind in ("model", "reference", "floor")
                               for name in (samples.get(kind) or {})))
    bands = samples.get("reference_band") or {}
    rows = []
    for name in names:
        model = (samples.get("model") or {}).get(name)
        rows.append([f"`{name}`", _num(model), position(model, bands.get(name)) or "n/a",
                     _interval(bands.get(name), ".4g"),
                     _num((samples.get("reference") or {}).get(name)),
                     _num((samples.get("floor") or {}).get(name))])
    header = ["metric", "model", "model vs band", "reference band (5th–95th pct)",
              "reference (median)", "floor"]
    return [f"### {heading}", ""] + _table(header, rows) + [""]


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
        names += [n for kind in ("model", "reference", "floor") for n in (samples.get(kind) or {})]
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
    minutes = model["train_seconds"] / 60 if is_finite(model.get("train_seconds")) else None
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
