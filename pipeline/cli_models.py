"""Trained models: which one `generate` uses, and `python -m pipeline models` to list them.

A model is a complete Train run (pipeline/runs.py: best.ckpt, else last.ckpt) plus the
vocabulary it was trained with.
"""
import time
from pathlib import Path

from model.checkpoint import CheckpointError, check_header
from stages.errors import UserError

from .config import load_config
from .runs import complete_runs, model_file, one_run, runs_root, vocab_path_of
from .tasks import Train

TRAIN_HINT = "run `luigi --module pipeline Train --local-scheduler` first"


def add_model_arguments(parser):
    """--checkpoint / --train, as generate, score and serve take them."""
    m = parser.add_argument_group("model (default: the config's trained model, else the newest)")
    m.add_argument("--checkpoint", metavar="PATH", help="a best.ckpt / last.ckpt file")
    m.add_argument("--train", metavar="FINGERPRINT", help="a trained model by (a unique prefix "
                   "of) its fingerprint, as `python -m pipeline models` lists them")


def from_checkpoint(path):
    """(checkpoint, vocab.json) for a best.ckpt / last.ckpt given by path."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; give the path of a best.ckpt or "
                        "last.ckpt (see `python -m pipeline models`)")
    try:
        check_header(path)   # the file first: its vocabulary is looked for next to it
    except CheckpointError as e:
        raise UserError(f"{e}; give the path of a best.ckpt or last.ckpt (see "
                        "`python -m pipeline models`)") from None
    return path, vocab_path_of(path.parent)


def from_fingerprint(root, prefix):
    """(checkpoint, vocab.json) of the one complete Train run whose fingerprint starts so."""
    folder = one_run(root, prefix, "`python -m pipeline models` lists them")
    return model_file(folder), vocab_path_of(folder)


def default_model(cfg_path, note=lambda msg: None):
    """The config's own trained model; if it has none, the newest trained model."""
    train = Train(config=cfg_path)
    if train.complete():
        return model_file(train.folder()), vocab_path_of(train.folder())
    root = runs_root(load_config(cfg_path).artifacts_dir)
    runs = complete_runs(root)
    if not runs:
        raise UserError(f"no trained model under {root}/Train; {TRAIN_HINT}")
    folder = runs[-1][0]
    note(f"{cfg_path} has no trained model yet: using the newest, {folder.name}")
    return model_file(folder), vocab_path_of(folder)


def choose(cfg_path, checkpoint=None, train=None, note=lambda msg: None):
    if checkpoint and train:
        raise UserError("give either --checkpoint or --train, not both")
    if checkpoint:
        return from_checkpoint(checkpoint)
    if train:
        return from_fingerprint(runs_root(load_config(cfg_path).artifacts_dir), train)
    return default_model(cfg_path, note)


def _differing(metas):
    """Config keys (and inputs) whose values are not the same in every run."""
    rows = [{**m.get("config", {}), **{f"input {k}": v[:8] for k, v in m.get("inputs", {}).items()}}
            for m in metas]
    keys = sorted({k for r in rows for k in r})
    return [k for k in keys if len({repr(r.get(k)) for r in rows}) > 1], rows


def model_rows(cfg_path):
    """One dict per complete Train run, oldest first; `current` marks the config's own."""
    root = runs_root(load_config(cfg_path).artifacts_dir)
    runs = complete_runs(root)
    here = Train(config=cfg_path).folder().resolve()
    keys, configs = _differing([m for _, m in runs])
    out = []
    for (folder, meta), config in zip(runs, configs):
        result = meta.get("result", {})
        out.append({"fingerprint": folder.name, "current": folder.resolve() == here,
                    "steps": result.get("steps"), "best_val": result.get("best_val_nats_per_char"),
                    "finished": meta.get("finished"),
                    "differs": {k: config.get(k) for k in keys}})
    return out


def format_rows(rows):
    lines = [f"  {'fingerprint':<16}  {'steps':>6}  {'best val':>8}  {'finished (UTC)':<16}  "
             "differing keys"]
    for r in rows:
        best = r["best_val"]
        best = f"{best:8.4f}" if isinstance(best, (int, float)) and best < float("inf") else f"{'-':>8}"
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["finished"])) if r["finished"] else "?"
        differs = " ".join(f"{k}={v}" for k, v in r["differs"].items())
        lines.append(f"{'*' if r['current'] else ' '} {r['fingerprint']:<16}  {r['steps'] or 0:>6}  "
                     f"{best}  {when:<16}  {differs}".rstrip())
    return "\n".join(lines)


def list_models(args):
    rows = model_rows(args.config)
    if not rows:
        print(f"no trained model under {load_config(args.config).artifacts_dir}/Train; {TRAIN_HINT}")
        return 0
    print(format_rows(rows))
    print("* = the model of " + args.config if any(r["current"] for r in rows) else
          f"({args.config} has no trained model yet)")
    return 0
