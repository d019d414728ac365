"""A multipart upload cut short - the server or the worker killed between its parts - never
shows as an object on radosgw, and a later upload stores the whole file (cases in
tests/reliability_s3.py). Files above 8 MB go up in 8 MB parts (stages/s3_client.py)."""
import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from stages.errors import UserError
from tests.conftest import REPO
from tests.reliability_s3 import MULTIPART
from tests.s3_support import list_keys, restart_rgw, rgw_pid, rgw_server  # noqa: F401

pytestmark = pytest.mark.radosgw
CASE = {c.spec["who"]: c for c in MULTIPART}
KEY = "runs/EncodeShards/0123456789abcdef/train.tokens"

# A worker that SIGKILLs itself as soon as its first part has been stored.
WORKER = """
import os, signal, sys
from pipeline.store_s3 import S3Store
store = S3Store(sys.argv[1])
store.s3.meta.events.register("after-call.s3.UploadPart",
                              lambda **kw: os.kill(os.getpid(), signal.SIGKILL))
store._upload(sys.argv[2], sys.argv[3])
"""


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(np.random.default_rng(0).bytes(12 << 20))   # two parts
    return path


def _store(server, bucket, monkeypatch, cache):
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SHAKESPEARE_CIFG_CACHE", str(cache))
    from pipeline.store_s3 import S3Store
    return S3Store(f"s3://{bucket}/runs")


def _stored_whole(server, bucket, path):
    body = server.client().get_object(Bucket=bucket, Key=KEY)["Body"].read()
    return hashlib.sha256(body).digest() == hashlib.sha256(path.read_bytes()).digest()


def test_server_killed_between_parts_leaves_no_object(tmp_path, rgw_server, big_file, monkeypatch):
    bucket = rgw_server.bucket()
    store = _store(rgw_server, bucket, monkeypatch, tmp_path / "cache")
    killed = []

    def kill_server(**_):
        if not killed:
            killed.append(True)
            os.killpg(rgw_pid(rgw_server), signal.SIGKILL)
            time.sleep(0.5)
    store.s3.meta.events.register("after-call.s3.UploadPart", kill_server)
    try:
        with pytest.raises(UserError) as err:
            store._upload(big_file, KEY)
    finally:
        restart_rgw(rgw_server)
    message = str(err.value)
    assert killed and CASE["server"].sees in message and "\n" not in message, message
    assert KEY not in list_keys(rgw_server, bucket)
    retry = _store(rgw_server, bucket, monkeypatch, tmp_path / "cache")
    retry._upload(big_file, KEY)
    assert _stored_whole(rgw_server, bucket, big_file)


def test_worker_killed_between_parts_leaves_no_object(tmp_path, rgw_server, big_file, monkeypatch):
    bucket = rgw_server.bucket()
    env = {**os.environ, **rgw_server.env, "PYTHONPATH": str(REPO),
           "SHAKESPEARE_CIFG_CACHE": str(tmp_path / "cache-a")}
    proc = subprocess.run([sys.executable, "-c", WORKER, f"s3://{bucket}/runs", str(big_file), KEY],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert KEY not in list_keys(rgw_server, bucket)
    # The unfinished upload is invisible but exists until aborted (README: a lifecycle rule).
    pending = rgw_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"] for u in pending] == [KEY]
    other = _store(rgw_server, bucket, monkeypatch, tmp_path / "cache-b")
    other._upload(big_file, KEY)
    assert _stored_whole(rgw_server, bucket, big_file)
