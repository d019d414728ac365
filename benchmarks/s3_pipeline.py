"""A whole pipeline on a local folder and on radosgw, one after the other: time, rerun time, figures.

    python benchmarks/s3_pipeline.py [--config pipeline.yaml] [--dir /tmp/s3-pipeline]

Runs against the S3 server the AWS_* variables name (the README's figures: a one-node radosgw
on loopback, started with `bash tests/rgw_up.sh DIR PORT MON_PORT KEY SECRET`). Writes two
copies of the config that differ only in `artifacts_dir` (a fresh local folder; a fresh
bucket it creates), and for each runs `luigi --module pipeline Evaluate
--local-scheduler` twice: the first run builds every stage, the rerun must run nothing. The
S3 rerun uses an empty local cache, as another machine would. Prints one JSON line per run
(`artifacts`, `run`, `wall_seconds` of the whole command, `ran`: the stages it ran) and one
comparing the two reports' held-out figures (`same_figures`).
"""
import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pipeline.base import stages_done  # noqa: E402
from stages.s3_client import make_client  # noqa: E402


def copy_config(src, dst, artifacts):
    cfg = yaml.safe_load(Path(src).read_text())
    cfg["artifacts_dir"] = artifacts
    for source in cfg.get("corpus", {}).get("sources", []):
        if "path" in source:   # relative paths were relative to the original config's folder
            source["path"] = str((Path(src).resolve().parent / source["path"]).resolve())
    dst.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return dst


def luigi(config, env, log):
    cmd = [sys.executable, "-m", "luigi", "--module", "pipeline", "Evaluate", "--config",
           str(config), "--local-scheduler"]
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        code = subprocess.run(cmd, cwd=config.parent, env=env, stdout=fh,
                              stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    if code != 0:
        sys.exit(f"{config} failed (exit {code}); see {log}")
    return wall, stages_done(Path(log).read_text())


def s3_report(client, bucket):
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="runs/Evaluate/")["Contents"]]
    key = next(k for k in keys if k.endswith("/report.json"))
    return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "pipeline.yaml"))
    ap.add_argument("--dir", type=Path, default=Path("/tmp/s3-pipeline"))
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    client, bucket = make_client(), f"s3-pipeline-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    base = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = {"local": (copy_config(args.config, args.dir / "local.yaml", str(args.dir / "artifacts")),
                      [base, base]),
            "s3": (copy_config(args.config, args.dir / "s3.yaml", f"s3://{bucket}/runs"),
                   [{**base, "SHAKESPEARE_CIFG_CACHE": str(args.dir / f"cache-{m}")} for m in "ab"])}
    for name, (config, envs) in runs.items():
        for i, env in enumerate(envs):
            wall, ran = luigi(config, env, args.dir / f"{name}-{i}.log")
            print(json.dumps({"artifacts": name, "config": args.config, "run": ["first", "rerun"][i],
                              "wall_seconds": round(wall, 2), "ran": ran}), flush=True)
    local = json.loads(next((args.dir / "artifacts" / "Evaluate").glob("*/report.json")).read_text())
    remote = s3_report(client, bucket)
    print(json.dumps({"same_figures": local["heldout"] == remote["heldout"],
                      "heldout": {k: v for k, v in remote["heldout"].items()
                                  if isinstance(v, dict) and "nats_per_char" in v}}), flush=True)


if __name__ == "__main__":
    main()
