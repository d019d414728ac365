"""`python -m pipeline status | generate | gc` — the pipeline from the terminal, without Luigi.

    python -m pipeline status [--config PATH]
    python -m pipeline generate --prime "ROMEO:" --length 500 --temperature 0.8
    python -m pipeline gc [--config PATH ...] [--yes]
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

from stages.errors import UserError
from stages.sample import generate_texts
from stages.train import load_model
from stages.vocab import Vocab

from .base import MARKER
from .config import load_config
from .tasks import BuildVocab, Download, EncodeShards, Evaluate, Sample, Train

STAGES = (Download, BuildVocab, EncodeShards, Train, Sample, Evaluate)


def _previous(task):
    """meta.json of the newest complete folder of this stage, or None."""
    metas = []
    for meta_path in task.folder().parent.glob("*/meta.json"):
        if (meta_path.parent / MARKER).exists():
            try:
                metas.append(json.loads(meta_path.read_text()))
            except ValueError:
                continue
    return max(metas, key=lambda m: m.get("finished", 0), default=None)


def why(task):
    """Why this stage will run: the config keys and inputs that differ from its last run."""
    prev = _previous(task)
    if prev is None:
        return "never run"
    reasons = [f"{k}: {prev['config'].get(k)!r} -> {v!r}" for k, v in task.slice().items()
               if prev["config"].get(k) != v]
    inputs = {t.__class__.__name__: t.fingerprint() for t in task.upstream()}
    reasons += [f"input {name} changed" for name, fp in inputs.items() if prev["inputs"].get(name) != fp]
    if task.identity() != prev.get("identity"):
        reasons.append("corpus content changed")
    return "; ".join(reasons) or "previous run incomplete or removed"


def status(args):
    for cls in STAGES:
        task = cls(config=args.config)
        done = task.complete()
        line = f"{cls.__name__:<13} {'cached' if done else 'to run':<7} {task.folder()}"
        print(line if done else f"{line}\n{'':<22}why: {why(task)}")
    return 0


def _model_folders(cfg_path):
    """The current config's Train and BuildVocab folders if trained, else the newest trained."""
    train = Train(config=cfg_path)
    if train.complete():
        return train.folder(), train.input_folder(BuildVocab)
    root = Path(load_config(cfg_path).artifacts_dir)
    runs = sorted((p.parent for p in root.glob(f"Train/*/{MARKER}")),
                  key=lambda p: json.loads((p / "meta.json").read_text())["finished"])
    if not runs:
        raise UserError(f"no trained model under {root}/Train; run "
                        "`luigi --module pipeline Train --local-scheduler` first")
    shards_fp = json.loads((runs[-1] / "meta.json").read_text())["inputs"]["EncodeShards"]
    shards_meta = json.loads((root / "EncodeShards" / shards_fp[:16] / "meta.json").read_text())
    return runs[-1], root / "BuildVocab" / shards_meta["inputs"]["BuildVocab"][:16]


def generate(args):
    train_dir, vocab_dir = _model_folders(args.config)
    net, _ = load_model(train_dir / "best.ckpt")
    vocab = Vocab.load(vocab_dir / "vocab.json")
    texts = generate_texts(net, vocab, args.prime, args.length, args.num, args.temperature,
                           args.top_k, args.top_p, args.strategy, args.seed, args.unknown)
    for text in texts:
        print(args.prime + text, end="\n\n")
    return 0


def gc(args):
    keep = set()
    for path in args.config:
        keep |= {cls(config=path).folder().resolve() for cls in STAGES}
    root = Path(load_config(args.config[0]).artifacts_dir)
    stale = sorted(p for cls in STAGES for p in (root / cls.__name__).glob("*")
                   if p.is_dir() and p.resolve() not in keep)
    for p in stale:
        print(("removing " if args.yes else "would remove ") + str(p))
        if args.yes:
            shutil.rmtree(p)
    if stale and not args.yes:
        print(f"{len(stale)} folder(s) unreachable from {', '.join(args.config)}; rerun with --yes to delete")
    return 0


def parser():
    p = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("status", help="show each stage as cached or to run, and why")
    s.add_argument("--config", default="pipeline.yaml")
    g = sub.add_parser("generate", help="sample from the newest trained model")
    g.add_argument("--config", default="pipeline.yaml")
    g.add_argument("--prime", default="\n")
    g.add_argument("--length", type=int, default=500)
    g.add_argument("--num", type=int, default=1)
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--strategy", default="sample")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--unknown", choices=["error", "skip"], default="error")
    c = sub.add_parser("gc", help="remove outputs no longer reachable from the given configs")
    c.add_argument("--config", action="append", help="config(s) whose outputs to keep (repeatable)")
    c.add_argument("--yes", action="store_true", help="delete (default: only list)")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if args.command == "gc" and not args.config:
        args.config = ["pipeline.yaml"]
    try:
        return {"status": status, "generate": generate, "gc": gc}[args.command](args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
