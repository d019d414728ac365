"""`train.init_from`: which earlier trained model a new Train run starts from.

    ""            off: random initialisation (the default)
    previous      the newest complete Train folder under `<artifacts_dir>/Train` with the same
                  architecture (model.* except regularisers and seed), other than this run's own
    <hex>         a Train fingerprint, or a unique prefix of one (the folder name is 16 chars)
    <path>        a best.ckpt / last.ckpt file

Only the key's value enters the Train fingerprint: "previous" names a rule, not a run, so a
newer run appearing later does not make a finished run stale. The source is resolved when the
stage runs and recorded in its meta.json (`result.init_from`), with the characters the grown
vocabulary added. A named run's vocabulary is found through the meta.json chain
Train -> EncodeShards -> BuildVocab/vocab.json (or a vocab.json next to the checkpoint).
"""
import logging
import re
from pathlib import Path

from model.checkpoint import load_model
from model.regularise import RATES
from stages.errors import UserError
from stages.vocab import Vocab
from stages.warm_start import warm_start

from .runs import complete_runs, model_file, one_run, read_meta, runs_root, vocab_path_of

log = logging.getLogger("pipeline")

# Regularisers and the seed may differ between the runs: they do not change the weights' shapes.
ARCH_EXEMPT = ("model.seed", *(f"model.{k}" for k in RATES))


def _architecture(config):
    return {k: v for k, v in config.items() if k.startswith("model.") and k not in ARCH_EXEMPT}


def _previous(task, root):
    """Newest qualifying run whose vocabulary can still be found (a hand-deleted folder is skipped)."""
    here, arch = task.folder().resolve(), _architecture(task.slice())
    runs = [f for f, m in complete_runs(root)
            if f.resolve() != here and _architecture(m.get("config", {})) == arch]
    for folder in reversed(runs):
        try:
            vocab_path_of(folder)
        except UserError:
            log.info("train.init_from: previous: skipping %s, its vocabulary is gone", folder)
            continue
        return folder
    return None


def _vocab(folder):
    try:
        return vocab_path_of(folder)
    except UserError as e:
        raise UserError(f"train.init_from: {e}") from None


def resolve(task):
    """{"path", "fingerprint", "vocab"} of the model to start from, or None for a cold start."""
    value = task.cfg.train.init_from.strip()
    if not value:
        return None
    root = runs_root(task.cfg.artifacts_dir)
    if value == "previous":
        folder = _previous(task, root)
        if folder is None:
            log.info("train.init_from: previous: no earlier run with this architecture under "
                     "%s/Train; starting from random weights", root)
            return None
        path = model_file(folder)
    elif Path(value).suffix == ".ckpt" or "/" in value or Path(value).is_file():
        path = Path(value)
        if not path.is_file():
            raise UserError(f"train.init_from: checkpoint {value} does not exist; give the path "
                            "of a best.ckpt or last.ckpt, a Train fingerprint or `previous`")
        folder = path.parent
    elif re.fullmatch(r"[0-9a-fA-F]+", value):
        try:
            folder = one_run(root, value, "use `previous`, a fingerprint listed there, or a "
                             "checkpoint path")
        except UserError as e:
            raise UserError(f"train.init_from: {e}") from None
        path = model_file(folder)
    else:
        raise UserError(f"train.init_from: {value!r} is not `previous`, a Train fingerprint or an "
                        "existing checkpoint path; fix it or set it to \"\" to start fresh")
    meta = read_meta(folder) or {}
    return {"path": str(path), "fingerprint": meta.get("fingerprint"), "vocab": _vocab(folder)}


def initializer(task, vocab):
    """The `init` callback of run_training for this Train task (None when init_from is off)."""
    if not task.cfg.train.init_from.strip():
        return None

    def init(net):
        source = resolve(task)
        if source is None:
            return None
        old_net, _ = load_model(source["path"])
        info = warm_start(net, vocab, old_net, Vocab.load(source["vocab"]))
        log.info("warm start from %s (run %s): %d characters kept, %d added %s",
                 source["path"], (source["fingerprint"] or "?")[:16], info["chars_kept"],
                 len(info["chars_added"]), "".join(info["chars_added"]).encode("unicode_escape").decode())
        return {"path": source["path"], "fingerprint": source["fingerprint"], **info}
    return init
