"""Bad inputs and a diverging run: one clear line, non-zero exit, nothing wrong marked complete."""
import functools
import http.server
import os
import re
import socket
import threading

import numpy as np
import pytest

from model import load_checkpoint
from tests.conftest import play_text, run_luigi, write_config
from tests.faults_support import check_artifacts, complete_stages, reference_results, seeded_config
from tests.reliability_cases import BAD_INPUTS, DIVERGENCE, UP_TO


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    return reference_results(tmp_path_factory.mktemp("input-ref"))


def closed_port():
    with socket.socket() as s:   # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """A local HTTP server for tmp_path/www (no network needed)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def fill(value, **names):
    """Replace {tmp}, {closed_port}, {server_port} inside the case's (nested) overrides."""
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [fill(v, **names) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, **names) for k, v in value.items()}
    return value


def one_line(out, text):
    lines = [line for line in out.splitlines() if text in line]
    assert len(lines) == 1 and "Traceback" not in out, out
    return lines[0]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: c.id)
def test_bad_input_is_one_clear_line_and_nothing_is_marked_complete(case, tmp_path, request):
    spec = case.spec
    names = {"tmp": str(tmp_path), "closed_port": closed_port(), "server_port": 0}
    if "server_port" in str(spec.get("overrides")):
        www, names["server_port"] = request.getfixturevalue("server")
        (www / "corpus.txt").write_text(play_text(5000))
    if spec.get("make_file"):
        (tmp_path / spec["make_file"]).write_text("a file, not a folder\n")
    if spec.get("read_only"):
        ro = tmp_path / spec["read_only"]
        ro.mkdir(mode=0o500)
        if os.access(ro, os.W_OK):
            pytest.skip("permissions do not bind this user (root); input-artifacts-under-file covers it")
    if "corpus" in spec:
        (tmp_path / "corpus.txt").write_bytes(spec["corpus"])
    overrides = fill(spec.get("overrides", {}), **names)
    if set(case.kept) == set(UP_TO["Train"]):   # reuse the reference's trained model
        cfg = seeded_config(tmp_path, request.getfixturevalue("reference"), case.kept, overrides)
    else:
        cfg = write_config(tmp_path, overrides)
    if spec.get("edit"):
        old, new = spec["edit"]
        assert old in cfg.read_text()
        cfg.write_text(cfg.read_text().replace(old, new, 1))
    config = fill(spec.get("config", str(cfg)), **names)

    code, out, ran = run_luigi(config, task=spec["task"], cwd=tmp_path)
    assert code != 0, out
    one_line(out, case.sees)
    assert complete_stages(tmp_path / "artifacts") == set(case.kept)
    check_artifacts(tmp_path / "artifacts")


def test_unknown_prime_characters_are_dropped_with_vocab_unknown_skip(tmp_path, reference):
    cfg = seeded_config(tmp_path, reference, UP_TO["Train"],
                        {"sample.prime": "ROMEO~€:", "vocab.unknown": "skip"})
    code, out, ran = run_luigi(cfg, task="Sample")
    assert code == 0 and ran == ["Sample"], out
    assert check_artifacts(tmp_path / "artifacts") == set(UP_TO["Sample"])


@pytest.mark.parametrize("case", DIVERGENCE, ids=lambda c: c.id)
def test_divergence_names_the_step_and_keeps_the_last_good_checkpoint(case, tmp_path, reference):
    cfg = seeded_config(tmp_path, reference, UP_TO["EncodeShards"], case.spec["overrides"])
    code, out, ran = run_luigi(cfg, task="Train")
    assert code != 0, out
    line = one_line(out, case.sees)
    assert "RuntimeWarning" not in out, out
    step = int(re.search(r"\bat step (\d+)\b", line)[1])
    assert complete_stages(tmp_path / "artifacts") == set(case.kept)

    ckpts = sorted((tmp_path / "artifacts" / "Train").glob("*/checkpoints/step-*.ckpt"))
    assert ckpts, "no checkpoint was written before the divergence"
    arrays, meta = load_checkpoint(ckpts[-1])          # verifies its sha256
    assert meta["step"] < step and np.isfinite(arrays["params"]).all()
    code, again, _ = run_luigi(cfg, task="Train")    # deterministic: the same stop, still one line
    assert code != 0 and line.split("ERROR: ")[-1] in again and "Traceback" not in again
