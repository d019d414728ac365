"""The tables of results in README.md and benchmarks/README.md are what benchmarks/render_tables.py
renders from the raw lines in benchmarks/results/: a table may not hold a number no raw line has.
Fix a failure by running `python benchmarks/render_tables.py` (or, if a number should change,
by adding the raw line it comes from), never by editing a table by hand."""
import difflib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import render_tables as rt  # noqa: E402


def test_the_committed_tables_are_the_rendered_ones():
    stale = {doc: "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                               f"{doc} (committed)", f"{doc} (rendered)"))
             for doc, (old, new) in rt.rendered().items() if old != new}
    assert not stale, "run python benchmarks/render_tables.py:\n" + "\n".join(stale.values())


@pytest.fixture
def results(tmp_path, monkeypatch):
    """A results folder of our own, so the renderer's rules are tested on lines we control."""
    monkeypatch.setattr(rt, "RESULTS", tmp_path)
    monkeypatch.setattr(rt, "_cache", {})
    lines = [{"note": "first sitting"}, {"run": "a", "x": 1.23456, "n": 1234},
             {"note": "second sitting"}, {"run": "a", "x": 2.5, "n": 7}, {"run": "b", "x": 3.0}]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(d) + "\n" for d in lines))
    return tmp_path


def one(results, template, where=""):
    return rt.render_cell(template, rt.Row("label", "r.jsonl", where))


def test_cells_take_their_numbers_from_the_selected_lines(results):
    assert one(results, "**{x|.2f}** ({n})", "after~first") == "**1.23** (1,234)"
    assert one(results, "{x@run=b}", "after~second") == "3.0"
    assert one(results, "{x@*|.1f}", "run") == "1.2 / 2.5 / 3.0"
    assert one(results, "{=v('x@-1') - v('x@0')|+.2f}", "run") == "+1.77"
    assert one(results, "{n}", "#4") == "7"


@pytest.mark.parametrize("template, where", [
    ("{x}", "run=a"),           # two lines where the cell needs one
    ("{x}", "run=c"),           # no line
    ("{y}", "run=b"),           # no such field
    ("{x@5}", "run"),           # no such line
])
def test_a_cell_without_exactly_one_raw_value_is_an_error_not_a_guess(results, template, where):
    with pytest.raises(rt.SpecError):
        one(results, template, where)


def test_only_the_text_between_the_markers_is_rewritten(results):
    table = rt.Table("t", "doc.md", ["run", "x"], [rt.Row("b", "r.jsonl", "run=b", ["{x}"])])
    doc = "prose 1.0\n<!-- table:t -->\n| stale |\n<!-- /table:t -->\nmore prose 9.9\n"
    out = rt.render_doc(doc, [table], "doc.md")
    assert out == ("prose 1.0\n<!-- table:t -->\n| run | x |\n|---|---:|\n| b | 3.0 |\n"
                   "<!-- /table:t -->\nmore prose 9.9\n")
    with pytest.raises(rt.SpecError):          # a spec table the document does not mark
        rt.render_doc("no markers\n", [table], "doc.md")
