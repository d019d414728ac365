"""Warm start after the corpus grows: how much training it saves against a cold start.

    python benchmarks/warm_start.py --text ../shared/data/tinyshakespeare.txt \\
        --workdir /tmp/warm-start-bench --steps 400

Splits the text at a speech boundary near `--first` (0.8) into `corpora/part1.txt` and
`corpora/part2.txt` under `--workdir` (never inside the repository), then runs the pipeline's
Train stage three times with the same small model (`luigi --module pipeline Train ...`):

  1. old:  the corpus folder holds part1 only (the last night's corpus), random init;
  2. part2 is added to the folder (the corpus grows by the rest of the text);
  3. warm: `train.init_from: previous` -> starts from run 1's best.ckpt;
  4. cold: `train.init_from: ""`       -> random init, same steps and schedule.

Runs 3 and 4 see the same data and score the same validation characters (the last 10% of the
whole text, all inside part2, which the old model never saw) every `--eval-every` steps.
Prints one JSON object: the cold run's final validation loss, the first step and training
seconds at which the warm run reached it, and both learning curves. Step 0 of the warm curve is
the old model (vocabulary mapped) scored before any training on the grown corpus.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from model import evaluate_stream, load_model  # noqa: E402
from pipeline.runs import vocab_path_of  # noqa: E402
from pipeline.tasks import BuildVocab, EncodeShards, Train  # noqa: E402
from stages.shards import read_stream  # noqa: E402
from stages.train import build  # noqa: E402
from stages.vocab import Vocab  # noqa: E402
from stages.warm_start import warm_start  # noqa: E402


def split_text(text, fraction):
    """Cut after the blank line nearest `fraction` of the text: both parts are whole speeches."""
    cut = text.rfind("\n\n", 0, int(len(text) * fraction)) + 2
    return text[:cut], text[cut:]


def config(args, name, init_from):
    cfg = {"artifacts_dir": str(args.workdir / "artifacts"),
           "corpus": {"sources": [{"path": str(args.workdir / "corpora")}]},
           "shards": {"seq_len": args.seq},
           "model": {"hidden_size": args.hidden, "num_layers": 2, "dropout": 0.0},
           "train": {"steps": args.steps, "batch_size": args.batch, "learning_rate": args.lr,
                     "warmup_steps": 20, "eval_every": args.eval_every, "eval_chars": args.eval_chars,
                     "checkpoint_every": 100, "log_every": 50, "sample_every": 10 ** 6,
                     "init_from": init_from}}
    path = args.workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def train(path):
    cmd = [sys.executable, "-m", "luigi", "--module", "pipeline", "Train", "--config", str(path),
           "--local-scheduler"]
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if proc.returncode:
        sys.exit(proc.stdout + proc.stderr)
    folder = Train(config=str(path)).folder()
    curve = [json.loads(l) for l in (folder / "metrics.jsonl").read_text().splitlines()]
    return folder, json.loads((folder / "meta.json").read_text()), curve


def step0(path, old_folder, eval_chars):
    """The old model on the grown corpus's validation text, before any training."""
    task = Train(config=str(path))
    vocab = Vocab.load(task.input_folder(BuildVocab) / "vocab.json")
    val = read_stream(task.input_folder(EncodeShards), "val", expect_vocab_fingerprint=vocab.fingerprint)
    val = np.asarray(val[:eval_chars] if eval_chars else val, np.int64)
    cfg = task.cfg
    net = build(cfg.model, cfg.train, cfg.shards.seq_len, vocab.size, val).net
    old_net, _ = load_model(old_folder / "best.ckpt")
    warm_start(net, vocab, old_net, Vocab.load(vocab_path_of(old_folder)))
    # the same scoring as the Train stage's evaluation points
    return evaluate_stream(net, val, lanes=min(32, max(1, len(val) // 2000)), burn_in=200)["nats_per_char"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", type=Path, default=REPO.parent / "shared" / "data" / "tinyshakespeare.txt")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/warm-start-bench"))
    p.add_argument("--first", type=float, default=0.8, help="fraction of the text in the old corpus")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.003)
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--eval-chars", type=int, default=20000)
    args = p.parse_args()
    args.workdir = args.workdir.resolve()
    if REPO in args.workdir.parents or args.workdir == REPO:
        sys.exit("error: --workdir must be outside the repository")
    corpora = args.workdir / "corpora"
    corpora.mkdir(parents=True, exist_ok=True)
    part1, part2 = split_text(args.text.read_text(encoding="utf-8"), args.first)
    (corpora / "part1.txt").write_text(part1, encoding="utf-8")
    (corpora / "part2.txt").unlink(missing_ok=True)

    old_folder, old_meta, _ = train(config(args, "old", ""))
    (corpora / "part2.txt").write_text(part2, encoding="utf-8")
    warm_cfg = config(args, "warm", "previous")
    warm_folder, warm_meta, warm = train(warm_cfg)
    _, cold_meta, cold = train(config(args, "cold", ""))

    assert warm_meta["result"]["init_from"]["path"] == str(old_folder / "best.ckpt")
    target = cold[-1]["val_nats_per_char"]
    reached = next((r for r in warm if r["val_nats_per_char"] <= target), None)
    print(json.dumps({
        "old_chars": len(part1), "added_chars": len(part2),
        "chars_added_to_vocab": warm_meta["result"]["init_from"]["chars_added"],
        "steps": args.steps, "chars_per_step": args.batch * args.seq,
        "cold_final_val": target, "cold_train_s": round(cold[-1]["t"], 1),
        "old_val_on_new_text_step0": round(step0(warm_cfg, old_folder, args.eval_chars), 4),
        "warm_reached_at_step": reached and reached["step"],
        "warm_reached_at_train_s": reached and round(reached["t"], 1),
        "warm_final_val": warm[-1]["val_nats_per_char"],
        "cold_curve": [(r["step"], round(r["val_nats_per_char"], 4)) for r in cold],
        "warm_curve": [(r["step"], round(r["val_nats_per_char"], 4)) for r in warm],
    }))


if __name__ == "__main__":
    main()
