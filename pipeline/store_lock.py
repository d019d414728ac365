"""Per-folder locks: flock on a local folder, a lock object with a lease on S3.

A stage holds its output folder's lock while it writes the folder, so two workers that start
the same stage at once never both build it: the second waits, then finds `_COMPLETE`.

The S3 lock (design and failure modes in DESIGN.md, "Locks on object storage"):
* taken by creating `.<fingerprint>.lock` with a conditional put (`If-None-Match: *`): of any
  number of workers, on any machines, exactly one create succeeds;
* the object names the owner and a lease (`ttl_s`); the holder rewrites it every ttl/3 with
  `If-Match: <its ETag>`, which changes the ETag;
* a waiter takes it over only after it has seen the *same* ETag for longer than the lease, on
  its own monotonic clock, and then only with `If-Match` on that ETag (one taker wins). No two
  machines' wall clocks are ever compared, so clock skew cannot expire a live lock early;
* a holder that was paused past its lease finds its next renewal or fencing check refused and
  stops before it marks anything complete (`check()`).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import random
import socket
import threading
import time
import uuid

from stages.errors import UserError
from stages.s3_client import error_code

TTL_ENV = "SHAKESPEARE_CIFG_LOCK_TTL"   # seconds a lease lasts without renewal (default 60)
log = logging.getLogger("pipeline")


@contextlib.contextmanager
def flock_folder(folder):
    """Exclusive lock for one local output folder, held while the stage writes it."""
    lock_path = folder.parent / f".{folder.name}.lock"
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        fh = open(lock_path, "a")
    except OSError as e:
        raise UserError(f"cannot write under {folder.parent} ({e.strerror}); set artifacts_dir "
                        "in the config to a folder you can write") from None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def lease_seconds():
    try:
        ttl = float(os.environ.get(TTL_ENV, 60))
    except ValueError:
        raise UserError(f"{TTL_ENV} must be a number of seconds, not {os.environ[TTL_ENV]!r}") from None
    if ttl <= 0:
        raise UserError(f"{TTL_ENV} must be > 0 seconds, not {ttl}")
    return ttl


def _refused(err):
    """A conditional request lost: the object exists / changed under us."""
    status = getattr(err, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status in (409, 412) or error_code(err) in ("PreconditionFailed", "ConditionalRequestConflict")


class S3Lock:
    """Context manager: hold the lock object `key` in `bucket` while the block runs."""

    def __init__(self, s3, bucket, key, label, ttl=None, poll=None):
        self.s3, self.bucket, self.key, self.label = s3, bucket, key, label
        self.ttl = lease_seconds() if ttl is None else ttl
        self.poll = poll or min(1.0, self.ttl / 10)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.etag, self.lost, self._stop = None, False, threading.Event()
        self._mutex = threading.Lock()   # renewal swaps the ETag; check() must see it whole
        self._renewals = 0

    def _body(self):
        now = time.time()
        return json.dumps({"owner": self.owner, "ttl_s": self.ttl, "renewal": self._renewals,
                           "written": now, "expires": now + self.ttl}).encode()

    def _put(self, **cond):
        reply = self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=self._body(),
                                   ContentType="application/json", **cond)
        return reply["ETag"].strip('"')   # If-Match wants the ETag unquoted (radosgw)

    def _holder(self):
        """(etag, body) of the current lock object, or None when there is none."""
        try:
            reply = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as err:   # botocore's ClientError; imported lazily with boto3
            if error_code(err) in ("NoSuchKey", "404"):
                return None
            raise
        try:
            body = json.loads(reply["Body"].read())
        except ValueError:
            body = {}
        return reply["ETag"].strip('"'), body

    def acquire(self):
        seen, said = None, None   # seen: (etag, monotonic time first seen)
        while True:
            try:
                self.etag = self._put(IfNoneMatch="*")
                return
            except Exception as err:
                if not _refused(err):
                    raise
            current = self._holder()
            if current is None:
                continue          # released in between: try to create it again at once
            etag, body = current
            if seen is None or seen[0] != etag:
                seen = (etag, time.monotonic())
            elif time.monotonic() - seen[1] > float(body.get("ttl_s", self.ttl)):
                if self._take_over(etag, body):
                    return
                seen = None
                continue
            if said != body.get("owner"):
                said = body.get("owner")
                log.info("waiting for the lock on %s held by %s", self.label, said)
            time.sleep(self.poll * (0.5 + random.random()))

    def _take_over(self, etag, body):
        try:
            self.etag = self._put(IfMatch=etag)
        except Exception as err:
            if _refused(err):
                return False   # another waiter took it, or the holder renewed just now
            raise
        log.warning("took over the lock on %s from %s: not renewed for %.0f s (holder dead or "
                    "paused)", self.label, body.get("owner"), float(body.get("ttl_s", self.ttl)))
        return True

    def _renew_loop(self):
        while not self._stop.wait(self.ttl / 3):
            self._renewals += 1
            try:
                with self._mutex:
                    self.etag = self._put(IfMatch=self.etag)
            except Exception as err:
                if _refused(err):
                    self.lost = True
                    log.warning("lost the lock on %s: another worker took it over", self.label)
                    return
                # The store is unreachable: retry at the next tick; if the lease runs out
                # meanwhile, a waiter may take over and check() will stop this worker.

    def check(self):
        """Fencing: raise unless this worker still holds the lock (called before publishing)."""
        with self._mutex:
            if not self.lost:
                current = self._holder()
                self.lost = current is None or current[0] != self.etag
        if self.lost:
            raise UserError(f"lost the lock on {self.label}: this worker did not renew it for "
                            f"{self.ttl:.0f} s (paused or cut off) and another took over; nothing "
                            "was marked complete by this worker, rerun to check the result")

    def release(self):
        try:
            current = self._holder()
            if current is not None and current[0] == self.etag:
                self._delete()
        except Exception as err:   # taken over meanwhile, or unreachable: the lease expires
            if not _refused(err):
                log.warning("could not release the lock on %s (%s); it expires in %.0f s",
                            self.label, err, self.ttl)

    def _delete(self):
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
        except Exception as err:
            if _refused(err):
                raise
            # Stores without conditional deletes (Ceph 16) reject the header: the ETag was
            # checked just above, so the window for deleting a successor's lock is one request.
            self.s3.delete_object(Bucket=self.bucket, Key=self.key)

    def __enter__(self):
        self.acquire()
        self._thread = threading.Thread(target=self._renew_loop, daemon=True,
                                        name=f"lock-renewal {self.label}")
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.release()
        return False
