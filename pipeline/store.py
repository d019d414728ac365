"""The artifacts store: where stage folders live, how they are locked and marked complete.

`artifacts_dir` is a local folder (as it always was) or an `s3://bucket/prefix` URI. Every
stage reads and writes plain local files in `folder()`; the store decides what that folder is
and what "complete" means:

* LocalStore (pipeline/store_local.py): the folder is `<artifacts_dir>/<Stage>/<fingerprint>/` itself; flock per folder;
  `_COMPLETE` written last, atomically. Exactly the behaviour from before the store existed.
* S3Store (pipeline/store_s3.py): the folder is a working copy in a local cache; inputs are
  downloaded into it (verified against the manifest), outputs uploaded from it, `_COMPLETE`
  put last, and the lock is an object on the store (pipeline/store_lock.py).

Stages never see the difference: they get local paths.
"""
from __future__ import annotations

import functools
from pathlib import Path

from stages.errors import UserError

from .store_local import LocalStore


def _remote(path):
    """The opened S3 store whose local cache holds `path`, or None."""
    return next((s for s in _OPENED if s.remote and Path(path).is_relative_to(s.cache)), None)


def local_copy(folder, only=None) -> Path:
    """A complete stage folder's files (or those named in `only`) on the local disk,
    downloaded once when the folder is on S3."""
    store = _remote(folder)
    return store.fetch(Path(folder), only) if store else Path(folder)


def file_names(folder) -> set:
    """Names of a stage folder's files, without downloading any (on S3: its manifest's too)."""
    store, folder = _remote(folder), Path(folder)
    local = {p.name for p in folder.glob("*") if p.is_file()}
    return local | set(store.manifest(folder)) if store else local


def indexed(stage_root) -> Path:
    """`<root>/<Stage>` with its complete runs' meta.json and markers mirrored when on S3."""
    store = _remote(stage_root)
    return store.index(Path(stage_root).name) if store else Path(stage_root)


_OPENED = []


@functools.lru_cache(maxsize=8)
def open_store(artifacts_dir: str):
    store = _open(artifacts_dir)
    _OPENED.append(store)
    return store


def _open(artifacts_dir: str):
    """The store for a config's artifacts_dir (one per process and value)."""
    scheme, sep, _ = str(artifacts_dir).partition("://")
    if not sep:
        return LocalStore(artifacts_dir)
    if scheme != "s3":
        raise UserError(f"artifacts_dir {artifacts_dir!r}: only a local folder or an s3://bucket/prefix "
                        "URI is supported; fix artifacts_dir in the config")
    from .store_s3 import S3Store   # boto3 is needed only here (the [s3] extra)
    return S3Store(artifacts_dir)
