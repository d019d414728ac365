"""Keep a report's figures as one raw line in benchmarks/results/ (the tables render from it).

    python benchmarks/report_line.py artifacts/Evaluate/<fp>/report.json \\
        --run "default pipeline, dynamic on" --command "luigi ..." --out benchmarks/results/test-split.jsonl

The line holds every held-out row (nats/char, its 95% interval, the split it was scored on),
the paired differences, the settings each adaptive row chose and on what, the seconds each
added, the static figure on the whole held-out tail, the model's training figures, Evaluate's
wall seconds (its meta.json), the commit and the machine's load when the line was written.
"""
import argparse
import json
import os
import subprocess
import time
from pathlib import Path

CHOSEN = ("rate", "decay", "weight", "tuned_on", "tuned_chars", "guard_trips", "order", "segment")


def rows(held):
    out = {}
    for name, row in held.items():
        if name == "difference":
            out[name] = {k: {"mean": round(v["mean"], 4), "ci95": _r(v["ci95"])} for k, v in row.items()}
            continue
        out[name] = {"nats_per_char": round(row["nats_per_char"], 4), "ci95": _r(row.get("ci95")),
                     "chars": row["chars"], "split": row.get("split"),
                     **{k: row[k] for k in CHOSEN if k in row}}
    return out


def _r(ci):
    return [round(x, 4) for x in ci] if ci else None


def line(report_path, run, command):
    path = Path(report_path)
    report = json.loads(path.read_text())
    meta = json.loads((path.parent / "meta.json").read_text())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    tail = report.get("validation") or {}
    return {"run": run, "command": command, "evaluate_fingerprint": meta["fingerprint"],
            "evaluate_seconds": round(meta["seconds"], 1), **rows(report["heldout"]),
            "adaptive_seconds": report.get("adaptive_seconds"),
            "validation": {"nats_per_char": round(tail["nats_per_char"], 4), "ci95": _r(tail.get("ci95")),
                           "chars": tail["chars"], "split": tail["split"]} if tail else None,
            "model": report["model"], "date": time.strftime("%Y-%m-%d %H:%M"), "commit": commit,
            "load_1min": round(os.getloadavg()[0], 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report")
    ap.add_argument("--run", required=True, help="what this line is, in words")
    ap.add_argument("--command", required=True, help="the command that produced the report")
    ap.add_argument("--out", required=True, help="the .jsonl file to append to")
    a = ap.parse_args()
    with open(a.out, "a") as fh:
        fh.write(json.dumps(line(a.report, a.run, a.command)) + "\n")


if __name__ == "__main__":
    main()
