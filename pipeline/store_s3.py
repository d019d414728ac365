"""Stage folders on S3 (or any S3-compatible store): `artifacts_dir: s3://bucket/prefix`.

Endpoint, region and credentials come from the standard AWS variables (`AWS_ENDPOINT_URL`,
`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), so one config runs against AWS and
against a local radosgw or MinIO.

Each stage folder `<prefix>/<Stage>/<fp>/` has a working copy in a local cache
(`$SHAKESPEARE_CIFG_CACHE`, default `~/.cache/shakespeare-cifg`, then `s3/<bucket>/<prefix>/`):
* the stage writes its files there, as on a local artifacts_dir;
* `complete()` uploads every file, then `_FILES.json` (size and sha256 of each), then
  `_COMPLETE` last: a folder without it is not done, whatever else it holds;
* `fetch()` downloads a complete upstream folder once, verifying each file's size and sha256
  against `_FILES.json`; later runs on the machine reuse the verified copies;
* `flush()` (Train, after each checkpoint) uploads what changed, so a rerun anywhere resumes.
An upload is all or nothing: a single PUT, or a multipart upload that is aborted on error and
never completed when the process dies. The lock is an object too (pipeline/store_lock.py).

Why boto3, not pyarrow.fs: pyarrow's S3 output stream cannot be aborted (closing it after an
error completes the upload, publishing a torn object under its final name), it has no
conditional puts (the lock) and no ETags (s3:// corpus sources), and it ignores
AWS_ENDPOINT_URL. boto3 does all of it with one client and one configuration.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import luigi

from stages.atomic import atomic_path, atomic_write_text
from stages.errors import UserError
from stages.s3_client import error_code, explain, make_client, transfer_config
from stages.text import sha256_file

from .store_local import MARKER
from .store_lock import S3Lock

MANIFEST = "_FILES.json"
CACHE_ENV = "SHAKESPEARE_CIFG_CACHE"
STAMPS = ".fetched.json"   # in a cached folder: size, mtime and sha256 of files verified
_CHUNK = 1 << 20
log = logging.getLogger("pipeline")


def _local_files(folder: Path) -> dict[str, Path]:
    """Files of a working folder, by name relative to it; temp files (dot names) excluded."""
    out = {}
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in rel.split("/")):
            if rel not in (MARKER, MANIFEST):
                out[rel] = path
    return out


class RemoteMarker(luigi.Target):
    """What Luigi asks when it asks whether a stage is done: does `_COMPLETE` exist on the store."""

    def __init__(self, store, folder):
        self.store, self.folder = store, folder

    def exists(self):
        return self.store.is_complete(self.folder)


class S3Store:
    remote = True

    def __init__(self, uri: str):
        self.root_uri = uri.rstrip("/")
        self.bucket, _, prefix = uri[len("s3://"):].partition("/")
        self.prefix = prefix.strip("/")
        if not self.bucket:
            raise UserError(f"artifacts_dir {uri!r} names no bucket; write s3://bucket/prefix")
        self.s3 = make_client()
        cache = Path(os.environ.get(CACHE_ENV) or "~/.cache/shakespeare-cifg").expanduser()
        self.cache = cache / "s3" / self.bucket / self.prefix
        self._synced: dict[Path, dict[str, tuple]] = {}   # folder -> {name: (size, mtime_ns)} uploaded
        self._locks: dict[Path, S3Lock] = {}
        self._fetched: set[Path] = set()
        self._manifests: dict[Path, dict] = {}   # complete folders' manifests, read once
        with explain("opening", self.root_uri, self.bucket):
            self.s3.head_bucket(Bucket=self.bucket)

    # -- names -----------------------------------------------------------------------------
    def folder(self, stage: str, name: str) -> Path:
        return self.cache / stage / name

    def key(self, folder: Path, name: str = "") -> str:
        rel = Path(folder).relative_to(self.cache).as_posix()
        return "/".join(p for p in (self.prefix, rel, name) if p)

    def uri(self, folder: Path) -> str:
        return f"s3://{self.bucket}/{self.key(folder)}"

    def index(self, stage: str) -> Path:
        """Mirror the meta.json and markers of this stage's complete folders; returns the root.

        The code that walks finished runs (status, models, continuation, warm starts) globs
        `<root>/*/meta.json` + `_COMPLETE`: after this, the cache answers it as a local folder would.
        """
        root = self.cache / stage
        listing = self._list(root)
        complete = {n.split("/")[0] for n in listing if n.endswith("/" + MARKER)}
        for name in complete:
            local = root / name
            if not (local / MARKER).exists():
                self._download(self.key(local, "meta.json"), local / "meta.json")
                atomic_write_text(local / MARKER, self._get_text(self.key(local, MARKER)))
        for marker in root.glob(f"*/{MARKER}"):
            if marker.parent.name not in complete:   # removed or redone on the store
                marker.unlink()
        return root

    def stage_folders(self, stage: str) -> list[Path]:
        root = self.cache / stage
        return sorted({root / n.split("/")[0] for n in self._list(root)})

    # -- completion and locks ------------------------------------------------------------------
    def marker_target(self, folder: Path):
        return RemoteMarker(self, folder)

    def is_complete(self, folder: Path) -> bool:
        with explain("checking", self.uri(folder), self.bucket):
            try:
                self.s3.head_object(Bucket=self.bucket, Key=self.key(folder, MARKER))
                return True
            except Exception as err:
                if error_code(err) in ("404", "NoSuchKey"):
                    return False
                raise

    def lock(self, folder: Path) -> S3Lock:
        lock = S3Lock(self.s3, self.bucket, self.key(folder.parent, f".{folder.name}.lock"),
                      self.uri(folder))
        self._locks[folder] = lock
        return _Locked(self, folder, lock)

    def _fence(self, folder: Path) -> None:
        lock = self._locks.get(folder)
        if lock is not None:
            with explain("checking the lock of", self.uri(folder), self.bucket):
                lock.check()

    # -- writing a folder ------------------------------------------------------------------------
    def begin(self, folder: Path, resumable: bool) -> None:
        """Working copy = what the store holds (resumable: Train's checkpoints), else empty."""
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        remote = self._list(folder)
        self._synced[folder] = {}
        if not resumable:
            self._delete(folder, list(remote))
            return
        for name in remote:
            if name not in (MARKER, MANIFEST):
                self._download(self.key(folder, name), folder / name)
                stat = (folder / name).stat()
                self._synced[folder][name] = (stat.st_size, stat.st_mtime_ns)

    def flush(self, folder: Path) -> None:
        """Upload new and changed files; delete from the store those removed locally."""
        self._fence(folder)
        synced = self._synced.setdefault(folder, {})
        files = _local_files(folder)
        for name, path in sorted(files.items()):
            stat = path.stat()
            if synced.get(name) != (stat.st_size, stat.st_mtime_ns):
                self._upload(path, self.key(folder, name))
                synced[name] = (stat.st_size, stat.st_mtime_ns)
        gone = [n for n in synced if n not in files]
        self._delete(folder, gone)
        for name in gone:
            synced.pop(name)

    def complete(self, folder: Path, text: str) -> None:
        """Every file, then the manifest, then the marker: the marker is the last object put."""
        self.flush(folder)
        manifest = {n: {"size": p.stat().st_size, "sha256": sha256_file(p)}
                    for n, p in sorted(_local_files(folder).items())}
        self._put_text(self.key(folder, MANIFEST), json.dumps(manifest, indent=1) + "\n")
        self._fence(folder)
        self._put_text(self.key(folder, MARKER), text)
        atomic_write_text(folder / MARKER, text)

    def remove(self, folder: Path) -> None:
        """The marker first, so that a removal cut short never leaves a 'complete' torn folder."""
        self._delete(folder, [MARKER])
        self._manifests.pop(folder, None)
        self._delete(folder, list(self._list(folder)))
        shutil.rmtree(folder, ignore_errors=True)

    # -- reading a folder ------------------------------------------------------------------------
    def fetch(self, folder: Path, only=None) -> Path:
        """Download a complete folder into the cache once; every file checked against the manifest.

        `only`: just these files (meta.json of a run, say), not the whole folder."""
        if folder in self._fetched:
            return folder
        manifest = self.manifest(folder)
        if not manifest:
            return folder    # not complete on the store: the caller's own checks speak
        stamps_path = folder / STAMPS
        try:
            stamps = json.loads(stamps_path.read_text())
        except (OSError, ValueError):
            stamps = {}
        for name, want in manifest.items():
            if only is not None and name not in only:
                continue
            path = folder / name
            stat = path.stat() if path.is_file() else None
            if stat and stamps.get(name) == [stat.st_size, stat.st_mtime_ns, want["sha256"]]:
                continue
            got = self._download(self.key(folder, name), path)
            if got != (want["size"], want["sha256"]):
                path.unlink(missing_ok=True)
                raise UserError(f"{self.uri(folder)}/{name} is damaged on the store (not the "
                                f"size or sha256 its {MANIFEST} records): delete {self.uri(folder)} "
                                "and rerun")
            stat = path.stat()
            stamps[name] = [stat.st_size, stat.st_mtime_ns, want["sha256"]]
        atomic_write_text(stamps_path, json.dumps(stamps))
        atomic_write_text(folder / MARKER, self._get_text(self.key(folder, MARKER)))
        if only is None:
            self._fetched.add(folder)
        return folder

    def manifest(self, folder: Path) -> dict:
        """{name: {"size", "sha256"}} of a folder complete on the store; {} if it is not."""
        if folder not in self._manifests:
            try:
                self._manifests[folder] = json.loads(self._get_text(self.key(folder, MANIFEST)))
            except FileNotFoundError:
                return {}
        return self._manifests[folder]

    # -- requests -------------------------------------------------------------------------------
    def _list(self, folder: Path) -> dict[str, int]:
        """{name relative to folder: size} of every object under it (lock objects excluded)."""
        prefix, out = self.key(folder) + "/", {}
        with explain("listing", self.uri(folder), self.bucket):
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(prefix):]
                    if not name.rsplit("/", 1)[-1].endswith(".lock"):
                        out[name] = obj["Size"]
        return out

    def _upload(self, path: Path, key: str) -> None:
        with explain("uploading", f"s3://{self.bucket}/{key}", self.bucket):
            self.s3.upload_file(str(path), self.bucket, key, Config=transfer_config())

    def _download(self, key: str, path: Path) -> tuple[int, str]:
        """Stream an object into `path` atomically; returns (size, sha256) of what arrived."""
        digest, size = hashlib.sha256(), 0
        with explain("downloading", f"s3://{self.bucket}/{key}", self.bucket):
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                for chunk in body.iter_chunks(_CHUNK):
                    digest.update(chunk)
                    fh.write(chunk)
                    size += len(chunk)
        return size, digest.hexdigest()

    def _get_text(self, key: str) -> str:
        with explain("reading", f"s3://{self.bucket}/{key}", self.bucket, missing=FileNotFoundError):
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()

    def _put_text(self, key: str, text: str) -> None:
        with explain("writing", f"s3://{self.bucket}/{key}", self.bucket):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=text.encode())

    def _delete(self, folder: Path, names: list[str]) -> None:
        keys = [{"Key": self.key(folder, n)} for n in names]
        with explain("deleting in", self.uri(folder), self.bucket):
            for i in range(0, len(keys), 1000):
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys[i:i + 1000],
                                                                   "Quiet": True})


class _Locked:
    """The folder's S3 lock as a context manager; forgets it when the block ends."""

    def __init__(self, store, folder, lock):
        self.store, self.folder, self.lock = store, folder, lock

    def __enter__(self):
        with explain("locking", self.store.uri(self.folder), self.store.bucket):
            self.lock.__enter__()
        return self.lock

    def __exit__(self, *exc):
        self.store._locks.pop(self.folder, None)
        return self.lock.__exit__(*exc)
