"""Report rendering: real PNG files of the expected size and Markdown that says what it should."""
import math

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pytest

from stages.report import markdown as rm
from stages.report import render as rr
from stages.report.markdown import render_markdown
from stages.report.render import plot_learning_curve, plot_sample_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BASELINES = {"7-gram Kneser-Ney": 1.52, "unigram": 3.3}
METRICS = ["novelty_5", "distinct_2", "js_3", "ngram_nll", "bleu4"]


def curve_rows(n=6):
    """A falling learning curve; the first point has no training loss yet."""
    return [{"step": 100 * i, "t": 30.0 * i, "train_loss": None if i == 0 else 2.0 / (i + 1) + 1,
             "val_nats_per_char": 2.2 / (i + 1) + 1.2} for i in range(n)]


def samples(nan_metric=None, band=False):
    """Kind -> metric -> value; `nan_metric` is NaN for the model; `band`: reference bands."""
    out = {kind: {m: 0.1 * (j + 1) + 0.01 * i for j, m in enumerate(METRICS)}
           for i, kind in enumerate(("model", "reference", "floor"))}
    if nan_metric:
        out["model"][nan_metric] = float("nan")
    if band:  # reference +- 0.02: the model (reference - 0.01) is inside every band
        out["reference_band"] = {m: [v - 0.02, v + 0.02] for m, v in out["reference"].items()}
    return out


def read_png(path):
    """Check `path` is a non-empty real PNG and return its pixel array."""
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_MAGIC)
    return mpimg.imread(path)


def test_learning_curve_is_a_wide_two_panel_png_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "curve.png"
    plot_learning_curve(curve_rows(), BASELINES, path)
    height, width = read_png(path).shape[:2]
    assert (width, height) == (rr.CURVE_SIZE_IN[0] * rr.DPI, rr.CURVE_SIZE_IN[1] * rr.DPI)
    assert width > 2 * height  # two panels side by side
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]


@pytest.mark.parametrize("rows", [
    [{"step": 0, "t": 0.0, "train_loss": None, "val_nats_per_char": 4.1}],
    [{"step": 5, "t": 2.0, "train_loss": None, "val_nats_per_char": 2.0},
     {"step": 9, "t": 4.0, "train_loss": None, "val_nats_per_char": 1.9}],
    [],
])
def test_learning_curve_copes_with_one_row_no_training_loss_and_no_rows(tmp_path, rows):
    path = tmp_path / "curve.png"
    plot_learning_curve(rows, BASELINES, path)
    read_png(path)


def test_baselines_far_above_the_curves_are_named_but_not_drawn():
    rows, baselines = curve_rows()[1:], {"kn": 1.1, "unigram": 3.3}
    lo, hi = rr._y_range(rows, baselines)
    assert hi == pytest.approx(max(r["val_nats_per_char"] for r in rows) * 1.15)
    assert hi < 3.3
    assert lo < 1.1  # a baseline below the curves stays in view
    fig, axes = plt.subplots(1, 2)
    labels = [h.get_label() for h in rr._draw_baselines(axes, baselines, hi)]
    assert labels == ["kn (1.100)", "unigram (3.300), above plot"]
    assert [line.get_ydata()[0] for line in axes[1].get_lines()] == [1.1]
    plt.close(fig)


def test_learning_curve_replaces_an_old_file_whole(tmp_path):
    path = tmp_path / "curve.png"
    path.write_bytes(b"stale")
    plot_learning_curve(curve_rows(2), {}, path)
    read_png(path)


def test_sample_metrics_grid_grows_in_rows_not_width(tmp_path):
    small, big = tmp_path / "one.png", tmp_path / "many.png"
    plot_sample_metrics({"model": {"js_3": 0.2}, "reference": {"js_3": 0.1}}, small)
    many = {k: dict(v, **{f"extra_{i}": 0.5 for i in range(6)}) for k, v in samples().items()}
    plot_sample_metrics(many, big, title="Samples at temperature 0.8")
    (h1, w1), (h2, w2) = read_png(small).shape[:2], read_png(big).shape[:2]
    rows = math.ceil(11 / rr.METRIC_COLS)
    assert w1 == w2 == rr.METRIC_WIDTH_IN * rr.DPI
    assert h1 == round((rr.METRIC_HEADER_IN + rr.METRIC_ROW_IN) * rr.DPI)
    assert h2 == round((rr.METRIC_HEADER_IN + rr.METRIC_ROW_IN * rows) * rr.DPI)


def test_sample_metrics_skip_nan_none_and_empty_metrics(tmp_path):
    data = samples(nan_metric="bleu4")
    data["floor"]["js_3"] = None
    data["model"]["all_missing"] = float("nan")
    assert "all_missing" not in rr._metric_names(data)
    assert rr._metric_names(data) == METRICS
    plot_sample_metrics(data, tmp_path / "s.png")
    read_png(tmp_path / "s.png")
    plot_sample_metrics({}, tmp_path / "empty.png")
    read_png(tmp_path / "empty.png")


def report():
    """A report dict of the stable shape the Evaluate stage writes."""
    return {
        "heldout": {
            "lstm": {"nats_per_char": 1.473219, "bits_per_char": 2.125381, "perplexity": 4.3627,
                     "protocol": "streamed | 200 burn-in chars", "ci95": [1.461, 1.4851]},
            "ngram": {"nats_per_char": 1.52, "bits_per_char": 2.193, "perplexity": 4.5722,
                      "order": 7, "ci95": [1.5071, 1.5322]},
            "difference": {"lstm_minus_ngram": {"mean": -0.046781, "ci95": [-0.0512, -0.0423]}},
            "unigram": {"nats_per_char": 3.3, "bits_per_char": 4.761, "perplexity": 27.11},
            "uniform": {"nats_per_char": 4.174387, "bits_per_char": 6.022368,
                        "perplexity": float("nan")},
        },
        "heldout_verdict": "The LSTM beats the 7-gram by 0.047 nats/char.",
        "sampling": {"temperature": 0.8},
        "samples": samples(nan_metric="bleu4", band=True),
        "samples_t1": {k: dict(v, self_bleu=0.123456) for k, v in samples().items()},
        "sample_texts": ["ROMEO:\nBut soft!" + "x" * 2000, "JULIET:\nAy me.", "three", "four"],
        "provenance": {"train": {"fingerprint": "abcdef0123456789ffff", "config": {"lr": 1},
                                 "seconds": 812.345}},
        "model": {"params": 1234567, "train_seconds": 900.0, "chars_per_s": 45678.9,
                  "steps": 5000},
    }


IMAGES = {"learning_curve": "curve.png", "samples": "samples.png", "samples_t1": "t1.png"}


def test_markdown_heldout_table_verdict_and_protocol():
    md = render_markdown(report(), IMAGES)
    assert "| LSTM (this model) | 1.4732 | 2.125 | 4.36 | 1.4610 – 1.4851 |" in md
    assert "| 7-gram Kneser-Ney | 1.5200 | 2.193 | 4.57 | 1.5071 – 1.5322 |" in md
    assert "| uniform | 4.1744 | 6.022 | n/a | n/a |" in md
    assert md.index("LSTM (this model)") < md.index("| unigram |") < md.index("| uniform |")
    assert "| difference |" not in md   # the paired difference is a sentence, not a model row
    assert "paired over the same blocks:* -0.0468 nats/char, 95% interval -0.0512 – -0.0423." in md
    assert "The LSTM beats the 7-gram by 0.047 nats/char." in md
    assert "streamed | 200 burn-in" in md  # outside a table, so not escaped


def test_markdown_metric_tables_cover_every_metric_with_nan_as_na():
    md = render_markdown(report(), IMAGES)
    for name in METRICS + ["self_bleu"]:
        assert f"`{name}`" in md
    assert "| `bleu4` | n/a | n/a | 0.49 – 0.53 | 0.51 | 0.52 |" in md
    assert "| `self_bleu` | 0.1235 | n/a | n/a | 0.1235 | 0.1235 |" in md   # no band at 1.0


def test_markdown_marks_each_model_figure_inside_or_outside_its_band():
    rep = report()
    rep["samples"]["model"].update(js_3=0.28, ngram_nll=0.44)   # bands 0.29-0.33, 0.39-0.43
    md = render_markdown(rep, {})
    table = md[md.index("### Samples at temperature 0.8"):md.index("### Samples at temperature 1.0")]
    assert "| `novelty_5` | 0.1 | inside | 0.09 – 0.13 | 0.11 | 0.12 |" in table
    assert "| `js_3` | 0.28 | below |" in table and "| `ngram_nll` | 0.44 | above |" in table
    bands = rep["samples"]["reference_band"]        # the ends belong to the band
    rep["samples"]["model"].update(js_3=bands["js_3"][0], ngram_nll=bands["ngram_nll"][1])
    md = render_markdown(rep, {})
    assert "| `js_3` | 0.29 | inside |" in md and "| `ngram_nll` | 0.43 | inside |" in md


def test_reference_band_is_shaded_across_its_whole_width(tmp_path):
    data = samples(band=True)
    data["reference_band"]["js_3"] = [0.25, 2.0]   # far beyond every bar
    fig, ax = plt.subplots()
    rr._metric_panel(ax, "js_3", data)
    shaded = [p for p in ax.patches if p.get_alpha() == rr.BAND_ALPHA]
    assert len(shaded) == 1
    # x in data units whether axvspan made a Polygon (matplotlib < 3.9) or a Rectangle.
    extent = shaded[0].get_path().get_extents(shaded[0].get_patch_transform())
    assert extent.x0 == pytest.approx(0.25) and extent.x1 == pytest.approx(2.0)
    assert ax.get_xlim()[1] >= 2.0          # the axis shows the whole band
    rr._metric_panel(ax2 := plt.subplots()[1], "js_3", samples())
    assert not [p for p in ax2.patches if p.get_alpha() == rr.BAND_ALPHA]
    plt.close("all")
    plot_sample_metrics(data, tmp_path / "band.png")
    read_png(tmp_path / "band.png")


def test_markdown_embeds_each_given_image_once():
    md = render_markdown(report(), IMAGES)
    for name in IMAGES.values():
        assert md.count(f"]({name})") == 1
    partial = render_markdown(report(), {"samples": "s.png"})
    assert partial.count("![") == 1 and "## Learning curve" not in partial


def test_markdown_without_images_has_no_image_section():
    md = render_markdown(report(), {})
    assert "![" not in md and "## Learning curve" not in md


def test_markdown_excerpts_provenance_and_model_line():
    md = render_markdown(report(), IMAGES)
    assert "ROMEO:\nBut soft!" in md and "JULIET:" in md and "three" in md
    assert "four" not in md  # only the first three samples
    assert "x" * rm.EXCERPT_CHARS not in md and "truncated" in md
    assert "| train | abcdef012345 | 812.3 |" in md and "abcdef0123456" not in md
    assert "1,234,567 parameters" in md and "5,000 training steps" in md
    assert "15.0 min" in md


def test_markdown_survives_a_sparse_report():
    sparse = report()
    for key in ("samples_t1", "sample_texts", "provenance", "model", "sampling"):
        del sparse[key]
    md = render_markdown(sparse, IMAGES)
    assert "temperature 1.0" not in md and "t1.png" not in md
    assert "## Provenance" not in md
    assert render_markdown({}, {}).startswith("# ")


def test_markdown_table_cells_escape_pipes_and_accept_numpy_numbers():
    np = pytest.importorskip("numpy")
    rep = {"heldout": {"ngram": {"nats_per_char": np.float32(1.5), "bits_per_char": 2.0,
                                 "perplexity": np.int64(4)}},
           "provenance": {"a|b": {"fingerprint": None, "seconds": np.float64(2.25)}}}
    md = render_markdown(rep, {})
    assert "| n-gram Kneser-Ney | 1.5000 | 2.000 | 4.00 |" in md
    assert "| a\\|b | n/a | 2.2 |" in md


def test_writing_markdown_does_not_load_matplotlib():
    """report.md needs no plotting library: importing its writer must not pull matplotlib in."""
    import subprocess
    import sys
    from tests.conftest import REPO
    code = "import sys, stages.report.markdown; print(sorted(m for m in sys.modules if 'matplotlib' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
