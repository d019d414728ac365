"""The one walker over finished stage folders (`<artifacts_dir>/<Stage>/*`), through the store:
on S3, listing reads metadata only and a file is downloaded when it is used.

A Train run counts when it is complete with a readable meta.json and a model file (best.ckpt,
else last.ckpt). Its vocabulary: the meta.json chain Train -> EncodeShards -> BuildVocab, else a
vocab.json next to its checkpoint.
"""
import json
from pathlib import Path

from stages.errors import UserError

from .store import file_names, indexed, local_copy, open_store
from .store_local import MARKER

MODEL_FILES = ("best.ckpt", "last.ckpt")


def read_meta(folder):
    """A complete stage folder's meta.json (fetched alone when on S3), or None if unreadable."""
    path = Path(folder) / "meta.json"
    try:
        if not path.is_file():
            path = local_copy(folder, ["meta.json"]) / "meta.json"
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def upstream(folder, stage):
    """The folder of `stage` that the run in `folder` read (its meta.json's inputs), or None."""
    try:
        return Path(folder).parent.parent / stage / read_meta(folder)["inputs"][stage][:16]
    except (TypeError, KeyError):
        return None


def model_name(folder):
    """best.ckpt, else last.ckpt: the model file a Train folder has, without downloading it."""
    names = file_names(folder)
    return next((name for name in MODEL_FILES if name in names), None)


def model_file(folder):
    """The model file of a Train folder (downloaded alone, with meta.json, when on S3), or None."""
    name = model_name(folder)
    return local_copy(folder, [name, "meta.json"]) / name if name else None


def complete(root, stage="Train"):
    """(folder, meta) of every complete `stage` folder under the artifacts folder `root`, oldest
    first (on S3, `root` is the local mirror `runs_root` returns)."""
    found = []
    for marker in indexed(Path(root, stage)).glob(f"*/{MARKER}"):
        meta = read_meta(marker.parent)
        if meta:
            found.append((marker.parent, meta))
    return sorted(found, key=lambda r: r[1].get("finished", 0))


def complete_runs(root):
    """(folder, meta) of every complete Train run with a model file, oldest first."""
    return [(folder, meta) for folder, meta in complete(root) if model_name(folder)]


def runs_root(artifacts_dir):
    """The local folder whose `Train/*` the walker reads (on S3: the cache, runs mirrored)."""
    return open_store(artifacts_dir).index("Train").parent


def one_run(root, prefix, hint):
    """The folder of the one complete run whose fingerprint starts with `prefix`; UserError
    (ending with `hint`) when none or several do."""
    prefix = prefix.strip().lower()
    found = [f for f, m in complete_runs(root) if prefix and m.get("fingerprint", "").startswith(prefix)]
    if not found:
        raise UserError(f"no complete Train run under {root}/Train has a fingerprint starting "
                        f"with {prefix!r}; {hint}")
    if len(found) > 1:
        raise UserError(f"{prefix!r} matches {len(found)} Train runs; give more characters of "
                        f"the fingerprint ({hint})")
    return found[0]


def vocab_path_of(train_folder):
    """vocab.json of the run in `train_folder`; UserError when neither place has it."""
    train_folder = Path(train_folder)
    shards = upstream(train_folder, "EncodeShards")
    for folder in (shards and upstream(shards, "BuildVocab"), train_folder):   # in that order
        if folder is not None and "vocab.json" in file_names(folder):
            return local_copy(folder, ["vocab.json"]) / "vocab.json"
    raise UserError(f"cannot find the vocabulary of {train_folder} (its EncodeShards/BuildVocab "
                    "folders are gone and no vocab.json is next to the checkpoint); put its "
                    "vocab.json there or choose another run")
