"""The walker over finished runs (pipeline/runs.py) through an s3:// store, from a second machine.

Two runs are trained on machine A; machines B and C have fresh local caches and only the bucket
in common with A: `models` must fetch metadata only, and `score --dynamic` must find the run's
EncodeShards folder (the training text) through the store. On moto (a fake, fast) and on radosgw
(`-m radosgw`): the bug was found against a real server, so the proof runs on one too.
"""
import json
import subprocess
import sys

import pytest

from tests.conftest import play_text
from tests.s3_support import moto_server, rgw_server, run_env, s3_config  # noqa: F401

DYNAMIC = {"evaluate.dynamic_segment": 20, "train.steps": 12, "train.eval_every": 6,
           "train.sample_every": 6}
# learning rates of the runs trained on A: two on moto; one on radosgw, whose start already costs
# ~15 s and where one run's checkpoints are enough to see `models` download them
RUNS = {"moto": (0.01, 0.02), "radosgw": (0.01,)}


def cli(config, env, *args):
    proc = subprocess.run([sys.executable, "-m", "pipeline", *args, "--config", str(config)],
                          cwd=config.parent, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module", params=["moto", pytest.param("radosgw", marks=pytest.mark.radosgw)])
def trained(request, tmp_path_factory):
    server = request.getfixturevalue("rgw_server" if request.param == "radosgw" else "moto_server")
    root = tmp_path_factory.mktemp("s3runs")
    bucket = server.bucket()
    (root / "corpus.txt").write_text(play_text())
    configs = []
    for lr in RUNS[request.param]:
        (root / str(lr)).mkdir()
        cfg = s3_config(root / str(lr), server, bucket, {**DYNAMIC, "train.learning_rate": lr},
                        corpus=root / "corpus.txt")
        env = run_env(server, root / "cache-a")
        proc = subprocess.run([sys.executable, "-m", "luigi", "--module", "pipeline", "Train",
                               "--config", str(cfg), "--local-scheduler"], cwd=cfg.parent, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        configs.append(cfg)
    return root, configs, server


def test_models_on_a_fresh_cache_fetches_metadata_only(trained):
    root, configs, server = trained
    cache = root / "cache-b"
    code, out, err = cli(configs[0], run_env(server, cache), "models")
    assert code == 0, err
    rows = [line for line in out.splitlines() if line[2:3].isalnum()]
    assert len(rows) == 1 + len(configs)                # the header and one row per run
    fetched = [p for p in cache.rglob("*") if p.is_file()]
    assert not [p for p in fetched if p.suffix == ".ckpt"], fetched
    assert sum(p.stat().st_size for p in fetched) < 20_000


def test_dynamic_score_on_a_second_machine_finds_the_training_text_on_the_store(trained):
    root, configs, server = trained
    text = root / "text.txt"
    text.write_text((root / "corpus.txt").read_text()[:3000])
    code, out, err = cli(configs[0], run_env(server, root / "cache-c"), "score", str(text),
                         "--dynamic", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["protocol"].startswith("dynamic evaluation")
