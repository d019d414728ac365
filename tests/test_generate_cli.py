"""`python -m pipeline generate` and `models`: streaming, primes, JSON nats, choosing a model, errors.

The trained models here are written directly (random weights, a real vocabulary, meta.json and
_COMPLETE as Train writes them), so no test has to train.
"""
import argparse
import io
import json
import os
import subprocess
import sys
import time
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from model import CIFGLSTM, save_checkpoint
from pipeline.cli import main, parser
from pipeline.cli_generate import write_texts
from pipeline.tasks import Train
from stages.generate import GenerateSettings, StopCutter, cut_at_stop, generate_stream
from stages.sample import generate_texts
from stages.vocab import build_vocab
from tests.conftest import REPO, play_text, write_config
from tests.test_beam import nats as reference_nats


def fake_run(folder, vocab, seed, config, fingerprint, steps=10, best=1.5):
    """A complete Train folder holding a random model, as Train leaves it."""
    folder.mkdir(parents=True)
    net = CIFGLSTM(vocab.size, 16, 1, vocab.size, seed=seed, char_inputs=True)
    net.flat[...] = np.random.default_rng(seed).normal(0, 0.5, net.flat.shape)
    save_checkpoint(folder / "best.ckpt", {"params": net.flat}, {"model": net.config(), "step": steps})
    vocab.save(folder / "vocab.json")
    meta = {"fingerprint": fingerprint, "config": config, "inputs": {}, "finished": time.time(),
            "result": {"steps": steps, "best_val_nats_per_char": best}}
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "_COMPLETE").write_text(fingerprint + "\n")
    return net


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A config whose own model is trained, and two more runs whose fingerprints share 'abcdef'.

    (The config's own fingerprint depends on the temporary path: a short shared prefix could
    match it too.)"""
    root = tmp_path_factory.mktemp("gen")
    cfg = str(write_config(root))
    vocab = build_vocab(Counter(play_text()))
    train = Train(config=cfg)
    nets = {"own": fake_run(train.folder(), vocab, 1, {"train.steps": 24, "model.hidden_size": 16},
                            train.fingerprint())}
    for name, seed, lr in (("abcdef12", 2, 0.01), ("abcdef34", 3, 0.02)):
        fp = name + "0" * 56
        nets[name] = fake_run(train.folder().parent / fp[:16], vocab, seed,
                              {"train.steps": 24, "model.hidden_size": 16, "train.learning_rate": lr},
                              fp, steps=30, best=1.25)
    return SimpleNamespace(cfg=cfg, vocab=vocab, nets=nets, train=train.folder())


def run(world, capsys, *args):
    code = main(["generate", "--config", world.cfg, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_streamed_output_equals_the_sample_stage_texts(world, capsys):
    code, out, _ = run(world, capsys, "--prime", "ROMEO:", "--length", "80", "--num", "3",
                       "--seed", "5", "--temperature", "0.9", "--top-k", "10")
    texts = generate_texts(world.nets["own"], world.vocab, "ROMEO:", 80, 3, 0.9, 10, 1.0, "sample", 5)
    assert code == 0 and out == "".join(f"ROMEO:{t}\n\n" for t in texts)
    assert len(set(texts)) == 3


class Recorder:
    """stdout that notes how many steps the network had run when each character was written."""

    def __init__(self, counter):
        self.counter, self.log = counter, []

    def write(self, text):
        self.log += [(ch, self.counter["steps"]) for ch in text]

    def flush(self):
        pass


def counting(net, monkeypatch):
    """Count the network's steps: window forwards (the prime) and one-character steps."""
    from model.stepper import Stepper
    counter = {"steps": 0}
    forward, step = net.forward, Stepper.step

    def counted(x, state=None, **kw):
        counter["steps"] += 1
        return forward(x, state, **kw)

    def counted_step(self, ids):
        counter["steps"] += 1
        return step(self, ids)
    net.forward = counted
    monkeypatch.setattr(Stepper, "step", counted_step)
    return net, counter


@pytest.mark.parametrize("num", [1, 3])
def test_each_character_is_written_as_soon_as_it_is_drawn(world, num, monkeypatch):
    net, counter = counting(CIFGLSTM(world.vocab.size, 16, 1, world.vocab.size, seed=4), monkeypatch)
    out = Recorder(counter)
    s = GenerateSettings(length=50, num=num, seed=2)
    write_texts(generate_stream(net, world.vocab, world.vocab.encode("ROMEO:"), s), "ROMEO:", out)
    first = [steps for _, steps in out.log[len("ROMEO:"):len("ROMEO:") + 50]]
    assert first == list(range(2, 52))     # one forward for the prime, then one per character


def test_json_reports_the_likelihood_and_beam_beats_greedy(world, capsys):
    lines = {}
    for strategy in ("greedy", "beam"):
        code, out, _ = run(world, capsys, "--prime", "KING HENRY:\n", "--length", "60",
                           "--strategy", strategy, "--format", "json")
        assert code == 0
        lines[strategy], = [json.loads(line) for line in out.splitlines()]
    net = world.nets["own"]
    for row in lines.values():
        ids = world.vocab.encode(row["text"])
        assert len(ids) == 60
        assert row["nats"] == pytest.approx(reference_nats(net, world.vocab.encode("KING HENRY:\n"), ids),
                                            rel=1e-4)
        assert row["nats_per_char"] == pytest.approx(row["nats"] / 60)
    assert lines["beam"]["nats"] <= lines["greedy"]["nats"] + 1e-4


def test_prime_file_and_standard_input_equal_the_prime_option(world, capsys, tmp_path, monkeypatch):
    prime = "JULIET:\nGood night, good night!\n"
    (tmp_path / "prime.txt").write_text(prime)
    common = ["--length", "40", "--seed", "3"]
    expected = run(world, capsys, "--prime", prime, *common)[1]
    assert run(world, capsys, "--prime-file", str(tmp_path / "prime.txt"), *common)[1] == expected
    monkeypatch.setattr("sys.stdin", io.StringIO(prime))
    assert run(world, capsys, "--prime-file", "-", *common)[1] == expected
    assert expected.startswith(prime)


def test_train_prefix_and_checkpoint_choose_that_model(world, capsys):
    common = ["--prime", "ROMEO:", "--length", "40", "--strategy", "greedy"]
    own = run(world, capsys, *common)[1]
    by_prefix = run(world, capsys, "--train", "abcdef34", *common)[1]
    ckpt = str(world.train.parent / ("abcdef34" + "0" * 8) / "best.ckpt")
    assert by_prefix == run(world, capsys, "--checkpoint", ckpt, *common)[1]
    assert by_prefix != own


@pytest.mark.parametrize("args,words", [
    (["--prime", "A", "--prime-file", "x.txt"], "--prime or --prime-file"),
    (["--prime-file", "/no/such/prime.txt"], "does not exist"),
    (["--prime", "ROMEO~"], "not in the corpus vocabulary"),
    (["--train", "0123456789abcdef0"], "no complete Train run"),
    (["--train", "abcdef"], "matches 2 Train runs"),
    (["--train", "abcdef12", "--checkpoint", "x.ckpt"], "--checkpoint or --train"),
    (["--checkpoint", "/no/such/best.ckpt"], "does not exist"),
    (["--checkpoint", __file__], "is not a checkpoint"),   # a text file with no vocab.json beside it
    (["--strategy", "bem"], "unknown"),
    (["--top-p", "2"], "top_p"),
    (["--strategy", "beam", "--num", "9"], "beam width"),
    (["--length", "many"], "invalid int"),
    (["--stop", "~"], "--stop"),
])
def test_user_mistakes_are_one_line_errors(world, capsys, args, words):
    try:
        code = main(["generate", "--config", world.cfg, *args])
    except SystemExit as e:           # argparse's own checks exit
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err and err.startswith("error: "), err


def test_stop_cuts_streams_where_a_whole_text_would_be_cut():
    rng = np.random.default_rng(0)
    for _ in range(300):
        text = "".join(rng.choice(list("ab\n"), rng.integers(0, 30)))
        stop = "".join(rng.choice(list("ab\n"), rng.integers(1, 4)))
        at = text.find(stop)
        expected = text if at < 0 else text[:at + len(stop)]
        cuts = sorted(rng.choice(len(text) + 1, rng.integers(0, 5)))
        cutter = StopCutter(stop)
        streamed = "".join(cutter.feed(text[a:b]) for a, b in zip([0, *cuts], [*cuts, len(text)]))
        assert streamed + cutter.flush() == expected == cut_at_stop(text, stop)


def test_models_lists_runs_with_their_differing_keys(world, capsys):
    assert main(["models", "--config", world.cfg]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[1] if line.startswith("*") else line.split()[0]: line
            for line in out.splitlines()[1:-1]}
    assert set(rows) == {world.train.name, "abcdef12" + "0" * 8, "abcdef34" + "0" * 8}
    assert rows[world.train.name].startswith("*")
    second = rows["abcdef34" + "0" * 8]
    assert "train.learning_rate=0.02" in second and " 30 " in second
    assert "1.2500" in rows["abcdef12" + "0" * 8]
    assert "train.steps" not in out and "model.hidden_size" not in out   # the same in every run


def test_every_option_says_what_it_does_and_its_default():
    subs = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        text = " ".join(sub.format_help().split())
        for action in sub._actions:
            if "-h" in action.option_strings or not action.option_strings:
                continue
            assert action.help, (name, action.option_strings)
            if action.default not in (None, False):
                shown = (action.help if "default" in action.help
                         else f"{action.help} (default: {action.default!r})")
                assert " ".join(shown.split()) in text, (name, action.option_strings)


def test_from_a_terminal(world):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "pipeline", "generate", "--config", world.cfg, "--length", "20"]
    ok = subprocess.run(cmd + ["--prime-file", "-", "--format", "json"], input="ROMEO:\n",
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and len(json.loads(ok.stdout)["text"]) == 20, ok.stderr
    bad = subprocess.run(cmd + ["--prime-file", "/no/such/file"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert bad.returncode == 2 and bad.stdout == "" and len(bad.stderr.splitlines()) == 1
