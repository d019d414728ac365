"""Where a stage says "what is in my folder now must survive a crash": a hook, no storage logic.

A stage writes its folder on the local disk. When the folder is only a working copy of a
remote store (pipeline/store_s3.py), the files must also reach the store before a crash can
take the machine: Train calls `flush(out_dir)` after every checkpoint, so a rerun on any
machine resumes from it. The pipeline registers what flushing a folder means (`flushing`);
with nothing registered (a local artifacts_dir, or a stage called directly) it does nothing.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

_FLUSHERS: dict[Path, tuple] = {}   # normalised path -> (the folder as registered, flush)


def _key(folder) -> Path:
    return Path(os.path.abspath(folder))


@contextmanager
def flushing(folder, flush):
    """While the block runs, `flush(folder)` makes the folder's files durable."""
    key = _key(folder)
    _FLUSHERS[key] = (folder, flush)
    try:
        yield
    finally:
        _FLUSHERS.pop(key, None)


def flush(folder) -> None:
    """Make the folder's current files durable (no-op unless the pipeline registered a flusher).

    `folder` may be a str (MPI rank 0 names it in a line to the launcher, pipeline/ranks.py);
    the flusher is handed the path it was registered with."""
    registered, fn = _FLUSHERS.get(_key(folder), (None, None))
    if fn is not None:
        fn(registered)
