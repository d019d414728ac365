"""Running `python -m pipeline serve` for the tests: a model, a server process on loopback, its log."""
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from pipeline.tasks import Train
from stages.vocab import build_vocab
from tests.conftest import REPO, play_text, write_config
from tests.test_generate_cli import fake_run


def model_world(root):
    """A config whose own trained model is a random 1x16 network (as tests/test_generate_cli.py)."""
    cfg = str(write_config(Path(root)))
    vocab = build_vocab(Counter(play_text()))
    train = Train(config=cfg)
    net = fake_run(train.folder(), vocab, 1, {"train.steps": 24, "model.hidden_size": 16},
                   train.fingerprint())
    return cfg, vocab, net, train.folder()


class Server:
    """`python -m pipeline serve ... --port 0` in a subprocess; `url` once it listens."""

    def __init__(self, cfg, *extra, env=None):
        cmd = [sys.executable, "-m", "pipeline", "serve", "--config", cfg, "--port", "0", *extra]
        full_env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", **(env or {})}
        self.proc = subprocess.Popen(cmd, cwd=Path(cfg).parent, stderr=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=full_env)
        self.lines, self.url = [], None
        ready = threading.Event()

        def read():                       # keep the pipe drained; note the address when printed
            for line in self.proc.stderr:
                self.lines.append(line)
                found = re.search(r"serving model \S+ on (http://\S+/)", line)
                if found:
                    self.url = found.group(1)
                    ready.set()
            ready.set()
        threading.Thread(target=read, daemon=True).start()
        ready.wait(60)
        if self.url is None:
            self.stop()
            raise RuntimeError("the server did not start:\n" + self.log())

    def log(self):
        return "".join(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        time.sleep(0.1)          # let the reader thread take the last lines


def wait_until(condition, timeout=10.0, every=0.05):
    """Poll `condition` until it is true (returns True) or the time is up (returns False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(every)
    return condition()
