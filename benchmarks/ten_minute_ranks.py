"""The 10-minute config's time to quality on two ranks: one host, two hosts over 1 Gbit/s, batch 128.

    python benchmarks/ten_minute_ranks.py          # as root (network namespaces), on an idle machine

Runs the Train stage of configs/tinyshakespeare-10min.yaml (600 s of training, whole-val
evaluations every 200 steps) as a user would (`luigi --module pipeline Train`), ONE AT A TIME,
each in a fresh artifacts folder under /tmp (kept, and named in its line), as:

  a  2 ranks on this host, total batch 64 (32 lanes a rank): strong scaling
  b  2 ranks on two "hosts" - network namespaces joined by a veth pair shaped with tc tbf to
     1 Gbit/s (benchmarks/netns_hosts.py), MPI entering each namespace as it would ssh to a
     machine, TCP over the veth only - total batch 64
  c  2 ranks on this host, total batch 128 (64 lanes a rank): weak scaling, at a learning
     rate scaled by sqrt(128 / 64) (see LR_SCALING below)

and appends one raw JSON line per run to benchmarks/results/ten-minute-ranks.jsonl: the final
validation nats/char (the last row of the Train's metrics.jsonl: the whole validation split,
scored after the last step), the best one and steps / chars/s / training seconds from its
meta.json, the command's wall seconds, the command, the date, the git commit and the machine's
load average just before the run started. Expect about 12 minutes a run, 35-40 in all.

`--set KEY=VALUE` overrides the config for every run (e.g. to check the plumbing quickly:
`--set model.hidden_size=32 --set train.time_budget_s=20 --out /tmp/x.jsonl`); `--runs a,c`
picks runs. A run that fails prints why and writes no line; the script then exits 1.
"""
import argparse
import datetime
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
from benchmarks.netns_hosts import Hosts, Unavailable, pinned  # noqa: E402

CONFIG = REPO / "configs" / "tinyshakespeare-10min.yaml"
CORPUS = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
OUT = HERE / "results" / "ten-minute-ranks.jsonl"
LOCAL = pinned("lo")   # one host: MPI on loopback
LINK_RATE = "1gbit"
BIG_BATCH = 128
# LR_SCALING: Adam's update size does not grow with the batch the way SGD's does; doubling the
# batch halves the gradient noise's variance, i.e. shrinks its standard deviation by sqrt(2), and
# the square-root rule (Hoffer et al. 2017; Malladi et al. 2022, the SDE scaling rule for Adam)
# keeps the noise per unit of progress the same: 4e-3 * sqrt(2) = 5.7e-3. The linear rule (8e-3)
# is an SGD rule and twice the peak rate this model's 10-minute sweep chose; warm-up stays 50
# steps (100 of batch 64's worth of characters) and the cosine still follows the time budget.
LR_SCALING = "sqrt"


def overrides_of(pairs):
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or "." not in key:
            sys.exit(f"error: --set wants SECTION.KEY=VALUE, got {pair!r}")
        out[key] = yaml.safe_load(value)
    return out


def apply(cfg, settings):
    """Set each SECTION.KEY of `settings` in the config dict `cfg`; return `cfg`."""
    for key, value in settings.items():
        section, _, leaf = key.partition(".")
        cfg.setdefault(section, {})[leaf] = value
    return cfg


def write_config(base, folder, settings, corpus):
    cfg = yaml.safe_load(Path(base).read_text())
    cfg["artifacts_dir"] = str(folder / "artifacts")
    cfg["corpus"] = {"sources": [{"path": str(corpus)}]}
    apply(cfg, settings)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path, cfg


def runs(base_cfg):
    """name -> (settings beyond the config, on two namespace hosts?)."""
    batch, lr = base_cfg["train"]["batch_size"], base_cfg["train"]["learning_rate"]
    scaled = round(lr * math.sqrt(BIG_BATCH / batch), 6)
    return {"a": ({"train.processes": 2}, False),
            "b": ({"train.processes": 2}, True),
            "c": ({"train.processes": 2, "train.batch_size": BIG_BATCH, "train.learning_rate": scaled}, False)}


def git(*args):
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def one_run(name, settings, two_hosts, args, forced):
    folder = Path(tempfile.mkdtemp(prefix=f"ten-minute-ranks-{name}-", dir="/tmp"))
    settings = {**settings, **forced}
    hosts, env, prefix = None, {**os.environ, "PYTHONPATH": str(REPO)}, []
    if two_hosts:
        hosts = Hosts(folder).make()   # Unavailable: not root, no iproute2
        hosts.shape(LINK_RATE)
        settings["train.hosts"] = list(hosts.ips)
        env.update(hosts.env())
        prefix = hosts.inside(0)
    else:
        env.update(LOCAL)
    try:
        config, cfg = write_config(args.config, folder, settings, args.corpus)
        cmd = [*prefix, sys.executable, "-m", "luigi", "--module", "pipeline", "Train",
               "--config", str(config), "--local-scheduler"]
        rx0 = hosts.rx_bytes() if hosts else None
        load, date = os.getloadavg(), datetime.datetime.now(datetime.timezone.utc)
        print(f"[{name}] {date:%H:%M:%S} load {load[0]:.2f}: {shlex.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        with open(folder / "luigi.log", "w") as log:
            code = subprocess.run(cmd, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        wall = time.perf_counter() - t0
        rx = hosts.rx_bytes() - rx0 if hosts else None
    finally:
        if hosts:
            hosts.remove()
    metas = list(folder.glob("artifacts/Train/*/meta.json"))
    if code != 0 or len(metas) != 1:
        print(f"[{name}] failed (exit {code}); see {folder / 'luigi.log'}", file=sys.stderr, flush=True)
        return None
    meta = json.loads(metas[0].read_text())
    res = meta["result"]
    curve = [json.loads(ln) for ln in (metas[0].parent / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    tr = cfg["train"]
    return {
        "run": name, "date": date.isoformat(timespec="seconds"), "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "load_before": [round(x, 2) for x in load], "cpus": os.cpu_count(),
        "hosts": "two network namespaces, veth shaped by tc tbf " + LINK_RATE if two_hosts else "one host",
        "processes": res["processes"], "batch_size": tr["batch_size"], "lanes_per_rank": tr["batch_size"] // res["processes"],
        "learning_rate": tr["learning_rate"], "lr_scaling": LR_SCALING if name == "c" else None,
        "time_budget_s": tr.get("time_budget_s"),
        "final_val_nats_per_char": curve[-1]["val_nats_per_char"], "final_step": curve[-1]["step"],
        "best_val_nats_per_char": res["best_val_nats_per_char"], "steps": res["steps"],
        "chars_per_s": round(res["chars_per_s"], 1), "train_seconds": round(res["train_seconds"], 2),
        "eval_seconds": round(res["eval_seconds"], 2), "stage_seconds": meta["seconds"],
        "wall_s": round(wall, 2), "veth_rx_bytes": rx, "curve": [[r["step"], r["t"], r["val_nats_per_char"]] for r in curve],
        "config": str(args.config), "settings": settings, "command": shlex.join(cmd), "artifacts": str(folder),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(CONFIG))
    p.add_argument("--corpus", default=str(CORPUS))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--runs", default="a,b,c")
    p.add_argument("--out", default=str(OUT))
    a = p.parse_args()
    a.corpus = Path(a.corpus).resolve()
    if not a.corpus.is_file():
        sys.exit(f"error: no corpus at {a.corpus}; pass --corpus")
    forced = overrides_of(a.set)
    table, failed = runs(apply(yaml.safe_load(Path(a.config).read_text()), forced)), []
    for name in a.runs.split(","):
        settings, two_hosts = table[name]
        try:
            row = one_run(name, settings, two_hosts, a, forced)
        except Unavailable as e:
            print(f"[{name}] skipped: {e}", file=sys.stderr, flush=True)
            row = None
        if row is None:
            failed.append(name)
            continue
        with open(a.out, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"[{name}] final val {row['final_val_nats_per_char']:.4f} nats/char, {row['steps']} steps, "
              f"{row['chars_per_s']:,.0f} chars/s, {row['wall_s']:.0f} s wall -> {a.out}", flush=True)
    if failed:
        sys.exit(f"error: run(s) {','.join(failed)} wrote no line")


if __name__ == "__main__":
    main()
