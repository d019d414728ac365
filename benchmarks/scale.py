"""Each pipeline stage alone on a corpus of a given size: wall time, stage time and peak memory.

    python benchmarks/scale.py --mb 100 [--dir /tmp/scale-100] [--hidden 384] [--steps 20]
    python benchmarks/scale.py --mb 100 --artifacts s3://bucket/scale   (AWS_* variables set)

Builds a corpus of about N MB from the bundled plays (copies of them, each copy's speeches
shuffled with its own seed, so no two copies are the same text), writes a config with a `path:`
source, the default model (or --hidden) and `train.steps` small, the default `evaluate`
settings, then runs the six stages one at a time (`python -m luigi ... <Stage>`, so each
process does one stage's work) and prints one JSON line per stage: `stage`, `seconds` (the
stage's own time from its meta.json), `wall_seconds` (the whole process, imports included),
`peak_rss_mb` (the process's maximum resident set, VmHWM), `chars` (corpus characters)
and, for the three data stages, `mb_per_s` (corpus bytes / stage seconds).
"""
import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from stages.bundled import BundledSource  # noqa: E402

STAGES = ("Download", "BuildVocab", "EncodeShards", "Train", "Sample", "Evaluate")
DATA_STAGES = ("Download", "BuildVocab", "EncodeShards")


def build_corpus(path, megabytes):
    """Shuffled copies of the bundled plays' speeches until the file has `megabytes` MB."""
    out = io.StringIO()
    BundledSource().fetch({"kind": "bundled"}, out, timeout=0, retries=0)
    speeches = [s + "\n\n" for s in out.getvalue().split("\n\n") if s.strip()]
    target, written, copy = int(megabytes * 1e6), 0, 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        while written < target:
            order = np.random.default_rng(copy).permutation(len(speeches))
            text = "".join(speeches[i] for i in order).encode("utf-8")[:target - written]
            fh.write(text.decode("utf-8", "ignore"))
            written, copy = written + len(text), copy + 1
    return path


def write_config(folder, corpus, hidden, steps, artifacts):
    cfg = {"artifacts_dir": artifacts, "corpus": {"sources": [{"path": str(corpus)}]},
           "model": {"hidden_size": hidden}, "train": {"steps": steps, "warmup_steps": 0}}
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


# `python -m luigi` that writes its own peak RSS (VmHWM) to $PEAK_RSS_FILE on exit. Not the
# child's ru_maxrss: a child starts with its parent's resident set counted (fork copies it, and
# exec keeps the high-water mark), which here would hide the small stages behind the corpus build.
def measured(module):
    """`python -c` code running `python -m module` and writing its own peak RSS (VmHWM, kB) to
    $PEAK_RSS_FILE on exit."""
    return f"""
import atexit, os, runpy, sys
def _peak():
    with open('/proc/self/status') as fh:
        kb = next(int(line.split()[1]) for line in fh if line.startswith('VmHWM:'))
    with open(os.environ['PEAK_RSS_FILE'], 'w') as out:
        out.write(str(kb))
atexit.register(_peak)
sys.argv[0] = {module!r}
runpy.run_module({module!r}, run_name='__main__', alter_sys=True)
"""


MEASURED_LUIGI = measured("luigi")


def run_stage(stage, config):
    """Run one stage in its own process; (wall seconds, peak RSS MB, exit code, output tail)."""
    cmd = [sys.executable, "-c", MEASURED_LUIGI, "--module", "pipeline", stage, "--config", str(config),
           "--local-scheduler"]
    peak = config.parent / f"{stage}.peak_kb"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PEAK_RSS_FILE": str(peak)}
    log = config.parent / f"{stage}.log"
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        code = subprocess.run(cmd, cwd=config.parent, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    return wall, int(peak.read_text()) / 1024, code, log.read_text()[-2000:]


def stage_seconds(root, stage):
    metas = sorted((root / stage).glob("*/meta.json"), key=os.path.getmtime)
    return json.loads(metas[-1].read_text())["seconds"] if metas else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, required=True, help="corpus size in MB (10^6 bytes)")
    ap.add_argument("--dir", type=Path, help="work folder (default /tmp/scale-<mb>)")
    ap.add_argument("--hidden", type=int, default=384, help="model.hidden_size (default: the default model)")
    ap.add_argument("--steps", type=int, default=20, help="train.steps")
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages to run")
    ap.add_argument("--artifacts", help="artifacts_dir, e.g. s3://bucket/prefix (default <dir>/artifacts)")
    args = ap.parse_args()
    folder = args.dir or Path(f"/tmp/scale-{args.mb:g}")
    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    if not corpus.exists():
        build_corpus(corpus, args.mb)
    stages = args.stages.split(",")
    from pipeline.store import open_store
    artifacts = args.artifacts or str(folder / "artifacts")
    store = open_store(artifacts)
    for stage in stages:   # every stage asked for really runs (the others may be reused)
        for stale in store.stage_folders(stage):
            store.remove(stale)
    root = store.cache if store.remote else Path(artifacts)   # where the stages' meta.json land
    size = corpus.stat().st_size
    with open(corpus, encoding="utf-8", newline="") as fh:
        chars = sum(len(chunk) for chunk in iter(lambda: fh.read(1 << 20), ""))
    config = write_config(folder, corpus, args.hidden, args.steps, artifacts)
    for stage in stages:
        wall, rss, code, tail = run_stage(stage, config)
        row = {"stage": stage, "seconds": stage_seconds(root, stage), "artifacts": artifacts.split(":")[0] if store.remote else "local", "wall_seconds": round(wall, 2),
               "peak_rss_mb": round(rss, 1), "chars": chars, "bytes": size, "exit": code}
        if stage in DATA_STAGES and row["seconds"]:
            row["mb_per_s"] = round(size / 1e6 / row["seconds"], 1)
        print(json.dumps(row), flush=True)
        if code != 0:
            print(tail, file=sys.stderr)
            sys.exit(code)


if __name__ == "__main__":
    main()
