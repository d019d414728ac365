"""CPU and wall seconds of the Evaluate stage's parts, on a config's existing upstream outputs.

    OPENBLAS_NUM_THREADS=1 python benchmarks/evaluate_parts.py --config pipeline.yaml

Needs the config's Sample output (run `luigi --module pipeline Sample --config ...` first).
Runs the stage's function once into a temporary folder (nothing under artifacts/ changes) and
prints one JSON line: total CPU and wall seconds, and per part [cpu, wall]. CPU seconds with one
BLAS thread move least when other jobs share the machine. Parts that a version of the stage
lacks are simply absent, so the script also times older checkouts (set PYTHONPATH to one).
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

from pipeline.config import load_config
from pipeline.tasks import Evaluate
import stages.evaluate as ev

PARTS = ("heldout", "intervals", "paired_difference", "generate_texts", "band", "reference_band",
         "measure", "sample_block", "_write")


def timed(name, fn, parts):
    def wrapper(*args, **kwargs):
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = parts.setdefault(name, [0.0, 0.0])
            spent[0] += time.process_time() - cpu
            spent[1] += time.perf_counter() - wall
    return wrapper


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="pipeline.yaml")
    args = parser.parse_args()
    cfg, parts = load_config(args.config), {}
    inputs = Evaluate(config=args.config)._inputs()
    for name in PARTS:
        if hasattr(ev, name):
            setattr(ev, name, timed(name, getattr(ev, name), parts))
    ev.MetricContext.build = timed("MetricContext.build", ev.MetricContext.build, parts)
    with tempfile.TemporaryDirectory() as folder:
        cpu, wall = time.process_time(), time.perf_counter()
        ev.evaluate_report(inputs, cfg, Path(folder))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(json.dumps({"config": args.config, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
                      "num_samples": cfg.sample.num_samples, "length": cfg.sample.length,
                      "parts_cpu_wall_s": {k: [round(x, 2) for x in v] for k, v in parts.items()}}))


if __name__ == "__main__":
    main()
