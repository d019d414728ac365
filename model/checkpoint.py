"""Complete, atomic, verified checkpoints.

File layout: MAGIC (8 bytes) | sha256 of the payload (32 bytes) | payload, where the payload is
an uncompressed .npz holding the named arrays plus one JSON document (`__meta__`) with
everything that is not an array (step, RNG state, data cursor, config...). The digest makes a
truncated or corrupted file fail loudly before anything is restored; the temp-file-and-rename
write means a crash leaves either the old file or the new one, never half of one.
"""
import hashlib
import io
import json
import os
import tempfile

import numpy as np

from .network import CIFGLSTM

MAGIC = b"CIFGCKP1"
HEAD = len(MAGIC) + 32


class CheckpointError(ValueError):
    """The file is not a complete checkpoint written by this code."""


def save_checkpoint(path, arrays, meta):
    """Write `arrays` (name -> ndarray) and the JSON-able `meta` to `path` atomically."""
    buf = io.BytesIO()
    payload_arrays = dict(arrays)
    payload_arrays["__meta__"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    np.savez(buf, **payload_arrays)
    payload = buf.getvalue()
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".ckpt", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read(path, size=-1):
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror}") from None


def _check_head(path, blob):
    if len(blob) < HEAD or blob[:len(MAGIC)] != MAGIC:
        raise CheckpointError(f"{path} is not a checkpoint (bad header or truncated)")


def check_header(path):
    """Raise CheckpointError unless `path` starts like a checkpoint (cheap: reads 40 bytes)."""
    _check_head(path, _read(path, HEAD))


def load_checkpoint(path):
    """Read a checkpoint; returns (arrays, meta). Raises CheckpointError if it is damaged."""
    blob = _read(path)
    _check_head(path, blob)
    if hashlib.sha256(blob[HEAD:]).digest() != blob[len(MAGIC):HEAD]:
        raise CheckpointError(f"checkpoint {path} is damaged (checksum mismatch)")
    with np.load(io.BytesIO(blob[HEAD:]), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    return arrays, meta


def load_model(path):
    """Rebuild a trained network from a checkpoint with its architecture (best.ckpt, last.ckpt,
    or a training checkpoint); returns (net, meta). Raises CheckpointError if it is damaged."""
    arrays, meta = load_checkpoint(path)
    try:
        cfg = dict(meta["model"])
        net = CIFGLSTM(cfg.pop("input_size"), cfg.pop("hidden_size"), cfg.pop("num_layers"),
                       cfg.pop("output_size"), dtype=np.dtype(cfg.pop("dtype")), **cfg)
        net.flat[...] = arrays["params"]
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} holds no model this code can rebuild ({e})") from None
    return net, meta
