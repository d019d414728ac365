"""Finished Train runs on disk: the one walker over `<artifacts_dir>/Train/*`.

A run counts when its folder has the completion marker, a readable meta.json and a model file
(best.ckpt, else last.ckpt). `generate`, `models`, warm starts (`train.init_from`) and
continuing a finished run (raising `train.steps`) all find runs here. A run's vocabulary is
found through the meta.json chain Train -> EncodeShards -> BuildVocab/vocab.json, else in a
vocab.json next to its checkpoint.
"""
import json
from pathlib import Path

from stages.errors import UserError

from .store import local_copy
from .store_local import MARKER


def read_meta(folder):
    """A stage folder's meta.json as a dict, or None if it is missing or unreadable."""
    try:
        return json.loads((Path(folder) / "meta.json").read_text())
    except (OSError, ValueError):
        return None


def model_file(folder):
    """best.ckpt, else last.ckpt, of a Train folder; None if it has neither."""
    folder = local_copy(folder)   # on S3: the folder's files, downloaded once
    for name in ("best.ckpt", "last.ckpt"):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def complete_runs(root):
    """(folder, meta) of every complete Train run under `root`, oldest first.

    `root`: an artifacts folder, or for an s3:// artifacts_dir `store.runs_root(...)`, the local
    index of its runs."""
    runs = []
    for marker in Path(root, "Train").glob(f"*/{MARKER}"):
        meta = read_meta(marker.parent)
        if meta and model_file(marker.parent):
            runs.append((marker.parent, meta))
    return sorted(runs, key=lambda r: r[1].get("finished", 0))


def by_fingerprint(root, prefix):
    """The folders of the complete runs whose fingerprint starts with `prefix` (lower case)."""
    prefix = prefix.strip().lower()
    return [f for f, m in complete_runs(root) if prefix and m.get("fingerprint", "").startswith(prefix)]


def vocab_path_of(train_folder):
    """vocab.json of the run in `train_folder`; UserError when neither place has it."""
    train_folder = Path(train_folder)
    root = train_folder.parent.parent
    try:
        shards_folder = root / "EncodeShards" / read_meta(train_folder)["inputs"]["EncodeShards"][:16]
        shards = read_meta(local_copy(shards_folder, ["meta.json"]))
        vocab_folder = root / "BuildVocab" / shards["inputs"]["BuildVocab"][:16]
        path = local_copy(vocab_folder, ["vocab.json"]) / "vocab.json"
        if path.is_file():
            return path
    except (TypeError, KeyError):
        pass
    if (train_folder / "vocab.json").is_file():
        return train_folder / "vocab.json"
    raise UserError(f"cannot find the vocabulary of {train_folder} (its EncodeShards/BuildVocab "
                    "folders are gone and no vocab.json is next to the checkpoint); put its "
                    "vocab.json there or choose another run")
