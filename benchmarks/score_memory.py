"""Peak memory and time of `python -m pipeline score` on texts of growing size: one JSON line each.

The texts are copies of a corpus file (default: the config's Download corpus) written to a
temporary folder and deleted afterwards. The score process reports its own peak resident set
(VmHWM) at exit, so the numbers are its own and not this process's.

    python benchmarks/score_memory.py --config configs/smoke.yaml --mb 10 100 1000 --lanes 64
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(REPO / "benchmarks"))
from scale import measured  # noqa: E402

MEASURED_SCORE = measured("pipeline")   # `python -m pipeline`, writing its own peak RSS


def write_text(path, source, mb):
    """`mb` MB (10^6 bytes) of whole copies of `source`, cut at a line end."""
    text = Path(source).read_bytes()
    want = int(mb * 1e6)
    with open(path, "wb") as fh:
        written = 0
        while written < want:
            piece = text[:want - written]
            if len(piece) < len(text):
                piece = piece[:piece.rfind(b"\n") + 1] or piece
            fh.write(piece)
            written += len(piece)
    return written


def measure(config, path, extra):
    with tempfile.TemporaryDirectory() as tmp:
        peak = Path(tmp) / "peak_kb"
        env = {**os.environ, "PYTHONPATH": str(REPO), "PEAK_RSS_FILE": str(peak)}
        cmd = [sys.executable, "-c", MEASURED_SCORE, "score", str(path), "--config", str(config),
               "--format", "json", *extra]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(proc.stderr)
        return wall, int(peak.read_text()) / 1024, json.loads(proc.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="pipeline.yaml", help="config whose model scores")
    ap.add_argument("--source", help="text to repeat (default: the config's corpus.txt)")
    ap.add_argument("--mb", type=float, nargs="+", default=[10, 100], help="text sizes, MB")
    ap.add_argument("--lanes", type=int, help="score --lanes")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the texts are written")
    args = ap.parse_args()
    source = args.source or next(Path("artifacts/Download").glob("*/corpus.txt"))
    extra = ["--lanes", str(args.lanes)] if args.lanes else []
    for mb in args.mb:
        path = Path(args.dir) / f"score-{mb:g}mb.txt"
        try:
            size = write_text(path, source, mb)
            wall, rss, res = measure(args.config, path, extra)
        finally:
            path.unlink(missing_ok=True)
        print(json.dumps({"bytes": size, "chars_scored": res["chars"], "wall_s": round(wall, 1),
                          "chars_per_s": round(res["chars"] / wall), "peak_rss_mb": round(rss, 1),
                          "nats_per_char": round(res["nats_per_char"], 4), "lanes": args.lanes,
                          "config": args.config}), flush=True)


if __name__ == "__main__":
    main()
