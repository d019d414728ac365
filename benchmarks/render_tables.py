"""Render the tables of results in README.md and benchmarks/README.md from benchmarks/results/.

    python benchmarks/render_tables.py            # rewrite the tables in place
    python benchmarks/render_tables.py --check    # exit 1 and print a diff where the docs differ

Why: a figure in a table must be a raw line's figure, and stay one. Each table sits in its
markdown file between `<!-- table:NAME -->` and `<!-- /table:NAME -->`; this script rewrites
only what is between the markers (prose around them is hand-written and may round), and
tests/test_rendered_tables.py fails when the committed text differs from what it renders.

The tables are data, in benchmarks/table_spec.py: a `Table` has a header and rows; a `Row` is
(label, raw file, which lines, cells). A cell is a template whose `{...}` placeholders name
fields of the selected raw lines; everything else in it is literal text:

    {field}              the field of the row's one selected line ("a.b.0" walks dicts/lists)
    {field|.4f}          ... formatted with a Python format spec (ints default to "1,234")
    {field@-1}           ... of the row's last line (@0 the first; @* every line, " / " joined)
    {field@k=v,k2}       ... of the one line, among the row's, with k == v and k2 present
    {file.jsonl::field}  ... from another raw file (its lines chosen by @ alone)
    {=expr|spec}         a value computed from raw values: v("field@...") inside expr,
                         plus min, max, abs, round, median, minsec (seconds -> "8 min 9 s")
                         and file (the row's raw file's name)

A row's `where` picks its lines with the same k=v and k terms, and also `!k` (no such field),
`k~text` (the field contains
text), `#n` (the n-th line of the file, from 1) and `after~text` (the lines after the note line
containing text, up to the next note line). A placeholder that finds no line, or more than
one where one is needed, or no such field, is an error: a table cannot show a number the raw
lines do not hold.

How to add a row (e.g. a new raw line for the test split): append the line to its file in
benchmarks/results/, then add one line to the table's rows in benchmarks/table_spec.py, e.g.
    Row("default pipeline, test split", "default-run.jsonl", "split=test", REPORT),
where REPORT is the table's usual cells (or give the row its own list of templates), and run
`python benchmarks/render_tables.py`. A new table: a `Table(...)` in the spec and the two
marker comments where it goes in the markdown.
"""
import argparse
import difflib
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
MARKERS = re.compile(r"(<!-- table:([\w-]+) -->\n)(.*?)(<!-- /table:\2 -->)", re.S)


class SpecError(ValueError):
    """A spec that does not match the raw lines: fix the spec or the lines, never the table."""


class Row:
    def __init__(self, label, file=None, where="", cells=None):
        self.label, self.file, self.where, self.cells = label, file, where, cells


class Table:
    def __init__(self, name, doc, header, rows, cells=(), align=None):
        self.name, self.doc, self.header, self.rows = name, doc, header, rows
        self.cells, self.align = list(cells), align or "l" + "r" * (len(header) - 1)


_cache = {}


def lines_of(file):
    """[(line number from 1, parsed dict)] of a raw file, read once."""
    if file not in _cache:
        path = RESULTS / file
        if not path.exists():
            raise SpecError(f"no raw file benchmarks/results/{file}")
        _cache[file] = [(n, json.loads(t)) for n, t in enumerate(path.read_text().splitlines(), 1)
                        if t.strip()]
    return _cache[file]


def field(line, path):
    value = line
    for part in path.split("."):
        if isinstance(value, list) and re.fullmatch(r"-?\d+", part):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise SpecError(f"no field {path!r} in {json.dumps(line)[:120]}")
    return value


def _has(line, path):
    try:
        field(line, path)
        return True
    except (SpecError, IndexError):
        return False


def _text(value):
    return value if isinstance(value, str) else json.dumps(value)


def select(numbered, terms):
    """The (n, line) pairs matching every comma-separated term (see the module's docstring)."""
    for term in [t.strip() for t in terms.split(",") if t.strip()]:
        if term.startswith("#"):
            numbered = [(n, d) for n, d in numbered if n == int(term[1:])]
        elif term.startswith("after~"):
            text, out, inside = term[6:], [], False
            for n, d in numbered:
                if "note" in d:
                    inside = text in d["note"]
                elif inside:
                    out.append((n, d))
            numbered = out
        elif term.startswith("!"):
            numbered = [(n, d) for n, d in numbered if not _has(d, term[1:])]
        elif "~" in term:
            k, text = term.split("~", 1)
            numbered = [(n, d) for n, d in numbered if _has(d, k) and text in _text(field(d, k))]
        elif "=" in term:
            k, want = term.split("=", 1)
            numbered = [(n, d) for n, d in numbered if _has(d, k) and _text(field(d, k)) == want]
        else:
            numbered = [(n, d) for n, d in numbered if _has(d, term)]
    return numbered


def fmt(value, spec):
    if spec:
        return format(value, spec)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else repr(value)


def minsec(seconds):
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def resolve(ref, row):
    """The raw value(s) a placeholder names, for one row: a value, or a list for @*."""
    if "::" in ref:              # another file: the row's `where` is about the row's own file
        file, ref = ref.split("::", 1)
        where = ""
    else:
        file, where = row.file, row.where
    if file is None:
        raise SpecError(f"{ref!r}: the row names no raw file")
    path, _, sel = ref.partition("@")
    numbered = select(lines_of(file), where)
    if sel == "*":
        return [field(d, path) for _, d in numbered]
    if re.fullmatch(r"-?\d+", sel):
        if not -len(numbered) <= int(sel) < len(numbered):
            raise SpecError(f"{file}: line {sel} of {len(numbered)} selected by {where!r}")
        return field(numbered[int(sel)][1], path)
    if sel:
        numbered = select(numbered, sel)
    if len(numbered) != 1:
        raise SpecError(f"{file}: {len(numbered)} lines match {where!r} + {sel!r}, want one")
    return field(numbered[0][1], path)


def render_cell(template, row):
    def one(match):
        body, _, spec = match.group(1).partition("|")
        if body.startswith("="):
            names = {"v": lambda ref: resolve(ref, row), "min": min, "max": max, "abs": abs,
                     "round": round, "minsec": minsec, "median": statistics.median,
                     "file": row.file}
            value = eval(body[1:], {"__builtins__": {}}, names)   # noqa: S307 (the spec is ours)
        else:
            value = resolve(body, row)
        if isinstance(value, list):
            return " / ".join(fmt(v, spec) for v in value)
        return fmt(value, spec)
    return PLACEHOLDER.sub(one, template)


def render_table(table):
    align = {"l": "---", "r": "---:", "c": ":---:"}
    out = ["| " + " | ".join(table.header) + " |",
           "|" + "|".join(align[a] for a in table.align) + "|"]
    for row in table.rows:
        cells = [row.label] + list(row.cells if row.cells is not None else table.cells)
        if len(cells) != len(table.header):
            raise SpecError(f"table {table.name}: row {row.label!r} has {len(cells)} cells, "
                            f"the header {len(table.header)}")
        try:
            out.append("| " + " | ".join(render_cell(c, row) for c in cells) + " |")
        except SpecError as e:
            raise SpecError(f"table {table.name}, row {row.label!r}: {e}") from None
    return "\n".join(out) + "\n"


def render_doc(text, tables, doc):
    """The markdown with every marked table re-rendered; each spec table must be marked once."""
    by_name = {t.name: t for t in tables if t.doc == doc}
    seen = []

    def swap(m):
        name = m.group(2)
        if name not in by_name:
            raise SpecError(f"{doc}: marker for table {name!r}, which the spec does not have")
        seen.append(name)
        return m.group(1) + render_table(by_name[name]) + m.group(4)
    out = MARKERS.sub(swap, text)
    missing = sorted(set(by_name) - set(seen))
    if missing or len(seen) != len(set(seen)):
        raise SpecError(f"{doc}: tables marked {seen}, the spec has {sorted(by_name)}")
    return out


def rendered():
    """{doc path: (committed text, rendered text)} for every document the spec names."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from table_spec import TABLES
    docs = sorted({t.doc for t in TABLES})
    out = {}
    for doc in docs:
        text = (ROOT / doc).read_text()
        out[doc] = (text, render_doc(text, TABLES, doc))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 with a diff if a committed table differs")
    args = ap.parse_args(argv)
    stale = 0
    for doc, (old, new) in rendered().items():
        if old == new:
            continue
        stale += 1
        if args.check:
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), new.splitlines(True), f"{doc} (committed)", f"{doc} (rendered)"))
        else:
            (ROOT / doc).write_text(new)
            print(f"rewrote the tables of {doc}")
    return 1 if (stale and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
