"""S3 servers for the tests on loopback: moto's standalone server (fast, a fake) and radosgw
(a real S3 server, tests/rgw_up.sh). Each test gets its own bucket; runs get the server's
address and keys through the standard AWS environment variables, as a user would set them."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO, write_config

KEYS = {"AWS_ACCESS_KEY_ID": "testkey", "AWS_SECRET_ACCESS_KEY": "testsecret", "AWS_REGION": "us-east-1"}
RGW_PACKAGES = ("radosgw", "ceph-mon", "ceph-osd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url, timeout):
    import urllib.error
    import urllib.request
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return True
        except urllib.error.HTTPError:
            return True        # it answered
        except OSError:
            time.sleep(0.1)
    return False


class Server:
    """A running S3 server: its endpoint, the env for clients, a client, a fresh bucket."""

    def __init__(self, kind, endpoint, stop):
        self.kind, self.endpoint, self._stop = kind, endpoint, stop

    @property
    def env(self):
        return {**KEYS, "AWS_ENDPOINT_URL": self.endpoint}

    def client(self):
        import boto3
        import botocore.config
        cfg = botocore.config.Config(request_checksum_calculation="when_required",
                                     response_checksum_validation="when_required")
        return boto3.client("s3", endpoint_url=self.endpoint, config=cfg,
                            region_name="us-east-1", **{k.lower(): v for k, v in KEYS.items()
                                                        if k != "AWS_REGION"})

    def bucket(self):
        name = f"t-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self):
        self._stop()


def start_moto():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    assert _wait_http(endpoint, 30), "moto's server did not start"
    return Server("moto", endpoint, lambda: (proc.terminate(), proc.wait()))


def rgw_missing():
    """Why radosgw cannot run here, or None."""
    missing = [p for p in ("radosgw", "ceph-mon", "ceph-osd", "monmaptool", "curl") if not shutil.which(p)]
    if missing:
        return (f"radosgw integration tests need {', '.join(missing)}: apt-get install -y "
                f"--no-install-recommends {' '.join(RGW_PACKAGES)} curl")
    return None


def start_rgw(state_dir):
    port, mon_port = free_port(), free_port()
    script = REPO / "tests" / "rgw_up.sh"
    out = subprocess.run(["bash", str(script), str(state_dir), str(port), str(mon_port),
                          KEYS["AWS_ACCESS_KEY_ID"], KEYS["AWS_SECRET_ACCESS_KEY"]],
                         capture_output=True, text=True, timeout=180)
    pids = [int(p.read_text()) for p in Path(state_dir).glob("*.pid")]

    def stop():
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)   # setsid made each its own group
            except ProcessLookupError:
                pass
    if out.returncode != 0:
        stop()
        raise RuntimeError(f"radosgw did not start:\n{out.stdout}\n{out.stderr}")
    server = Server("radosgw", f"http://127.0.0.1:{port}", stop)
    server.state_dir, server.pids = Path(state_dir), pids
    return server


def rgw_pid(server):
    return int((server.state_dir / "rgw.pid").read_text())


def restart_rgw(server):
    """Start the gateway again after a test killed it (the cluster behind it kept running)."""
    conf = server.state_dir / "ceph.conf"
    log = open(server.state_dir / "log" / "rgw-restart.out", "w")
    proc = subprocess.Popen(["radosgw", "-c", str(conf), "-n", "client.rgw.a", "-f"], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    (server.state_dir / "rgw.pid").write_text(str(proc.pid))
    server.pids.append(proc.pid)
    assert _wait_http(server.endpoint, 60), "radosgw did not come back"


def s3_config(folder, server, bucket, overrides=None, corpus=None):
    """The smoke config of tests/conftest.py with artifacts_dir on the bucket."""
    cfg = write_config(folder, overrides, corpus=corpus)
    text = cfg.read_text().replace(f"artifacts_dir: {Path(folder) / 'artifacts'}",
                                   f"artifacts_dir: s3://{bucket}/runs")
    assert "s3://" in text
    cfg.write_text(text)
    return cfg


def run_env(server, cache):
    """The environment of one worker ("machine"): the server, the keys, its own local cache."""
    return {**os.environ, "PYTHONPATH": str(REPO), **server.env, "SHAKESPEARE_CIFG_CACHE": str(cache)}


def complete_stages(server, bucket):
    keys = list_keys(server, bucket, "runs/")
    return {k.split("/")[1] for k in keys if k.endswith("/_COMPLETE")}


def list_keys(server, bucket, prefix=""):
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="session")
def moto_server():
    server = start_moto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rgw_server(tmp_path_factory):
    reason = rgw_missing()
    if reason:
        pytest.skip(reason)
    server = start_rgw(tmp_path_factory.mktemp("rgw") / "state")
    yield server
    server.stop()
