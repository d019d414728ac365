"""The pipeline with artifacts_dir on S3: moto's server (fast) and radosgw (a real S3 server).

Each "machine" is a process with its own local cache (SHAKESPEARE_CIFG_CACHE): nothing but the
bucket is shared between them.
"""
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from model import load_checkpoint
from tests.conftest import REPO
from tests.faults_support import check_artifacts, reference_results, stages_done
from tests.reliability_cases import STAGES
from tests.reliability_s3 import MISTAKES
from tests.s3_support import (complete_stages, list_keys, moto_server, rgw_server,  # noqa: F401
                              run_env, s3_config)


@pytest.fixture(params=["moto", pytest.param("radosgw", marks=pytest.mark.radosgw)])
def server(request):
    return request.getfixturevalue(f"{'rgw' if request.param == 'radosgw' else 'moto'}_server")


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    return reference_results(tmp_path_factory.mktemp("s3-ref"))


def luigi(config, env, task="Evaluate", module="luigi", pre=(), log=None):
    # Luigi's per-host lock on identical command lines is per machine: each "machine" its own.
    pids = Path(env["SHAKESPEARE_CIFG_CACHE"]) / "luigi-pids" if "SHAKESPEARE_CIFG_CACHE" in env else None
    if pids:
        pids.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", module, *pre, "--module", "pipeline", task, "--config",
           str(config), "--local-scheduler", *(["--lock-pid-dir", str(pids)] if pids else [])]
    out = open(log, "w") if log else subprocess.PIPE
    proc = subprocess.Popen(cmd, cwd=Path(config).parent, env=env, stdout=out,
                            stderr=subprocess.STDOUT, text=True)
    proc.log = log
    return proc


def run(config, env, task="Evaluate", **kw):
    proc = luigi(config, env, task, **kw)
    out, _ = proc.communicate(timeout=600)
    out = out if out is not None else Path(proc.log).read_text()
    return proc.returncode, out


def s3_results(server, bucket, tmp):
    """What a resumed or raced run must reproduce bit for bit, read from the bucket."""
    client, got = server.client(), {}

    def fetch(stage, name):
        keys = [k for k in list_keys(server, bucket, f"runs/{stage}/") if k.endswith("/" + name)]
        assert len(keys) == 1, keys
        path = Path(tmp) / f"{stage}-{name}"
        client.download_file(bucket, keys[0], str(path))
        return path
    got["last"] = load_checkpoint(fetch("Train", "last.ckpt"))[0]["params"]
    got["best"] = load_checkpoint(fetch("Train", "best.ckpt"))[0]["params"]
    got["samples"] = json.loads(fetch("Sample", "samples.json").read_text())["samples"]
    got["heldout"] = json.loads(fetch("Evaluate", "report.json").read_text())["heldout"]
    return got


def assert_same(reference, got):
    for key, value in got.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, reference[key]), key
        else:
            assert value == reference[key], key


def test_smoke_pipeline_on_s3_reruns_nothing_and_matches_a_local_folder(tmp_path, server, reference):
    bucket = server.bucket()
    cfg = s3_config(tmp_path, server, bucket, corpus=reference["folder"] / "corpus.txt")
    code, out = run(cfg, run_env(server, tmp_path / "cache-a"))
    assert code == 0 and "Traceback" not in out, out
    assert stages_done(out) == list(STAGES)
    assert complete_stages(server, bucket) == set(STAGES)
    # The writer's cache holds exactly what the store marked complete, and it all parses.
    assert check_artifacts(tmp_path / "cache-a" / "s3" / bucket / "runs") == set(STAGES)
    assert_same(reference, s3_results(server, bucket, tmp_path))
    # Reruns do nothing: on the same machine, and on another one with an empty cache.
    for cache in ("cache-a", "cache-b"):
        code, out = run(cfg, run_env(server, tmp_path / cache))
        assert code == 0 and stages_done(out) == [] and "Did not run any tasks" in out, out


def test_two_machines_started_at_once_build_each_stage_once(tmp_path, server, reference):
    bucket = server.bucket()
    cfg = s3_config(tmp_path, server, bucket, corpus=reference["folder"] / "corpus.txt")
    procs = [luigi(cfg, run_env(server, tmp_path / f"cache-{i}"), log=tmp_path / f"run{i}.log")
             for i in (1, 2)]
    outs = []
    for proc in procs:
        proc.wait(timeout=600)
        outs.append(Path(proc.log).read_text())
    for proc, out in zip(procs, outs):
        assert proc.returncode == 0 and "Traceback" not in out, out
    done = Counter(s for out in outs for s in stages_done(out))
    assert done == Counter(STAGES), done              # every stage built exactly once
    assert complete_stages(server, bucket) == set(STAGES)
    assert not [k for k in list_keys(server, bucket) if k.endswith(".lock")]   # all released
    assert_same(reference, s3_results(server, bucket, tmp_path))


@pytest.mark.parametrize("case", MISTAKES[:3], ids=[c.id for c in MISTAKES[:3]])
def test_store_mistakes_are_one_line_errors(tmp_path, server, case):
    kind = case.spec["case"]
    if kind == "credentials" and server.kind == "moto":
        pytest.skip("moto's server accepts any credentials")
    bucket = server.bucket() if kind != "bucket" else "no-such-bucket"
    cfg = s3_config(tmp_path, server, bucket)
    env = run_env(server, tmp_path / "cache")
    if kind == "credentials":
        env["AWS_SECRET_ACCESS_KEY"] = "wrong"
        env["AWS_ACCESS_KEY_ID"] = "wrong"
    if kind == "refused":
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"    # discard port: nothing listens
    code, out = run(cfg, env, task="Download")
    assert code != 0 and case.sees in out and "Traceback" not in out, out
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("_COMPLETE"))


def test_without_boto3_an_s3_artifacts_dir_names_the_install_command(tmp_path):
    cfg = s3_config(tmp_path, type("S", (), {"endpoint": "http://127.0.0.1:9"})(), "bucket")
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "boto3.py").write_text("raise ImportError('hidden by the test')\n")
    env = {"PYTHONPATH": f"{hide}:{REPO}", "PATH": "/usr/bin:/bin"}
    code, out = run(cfg, env, task="Download")
    assert code != 0 and MISTAKES[3].sees in out and "Traceback" not in out, out
