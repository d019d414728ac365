"""The S3 folder lock (pipeline/store_lock.py) against moto's S3 server on loopback."""
import json
import threading
import time

import pytest

from pipeline.store_lock import S3Lock
from stages.errors import UserError
from tests.s3_support import moto_server  # noqa: F401 (fixture)


@pytest.fixture
def s3(moto_server):  # noqa: F811
    client = moto_server.client()
    return client, moto_server.bucket()


def test_racing_workers_never_hold_the_lock_together(s3):
    client, bucket = s3
    inside, overlaps, turns = [0], [], []
    guard = threading.Lock()

    def worker(n):
        for _ in range(3):
            with S3Lock(client, bucket, "Stage/.f.lock", "f", ttl=30, poll=0.01):
                with guard:
                    inside[0] += 1
                    overlaps.append(inside[0])
                time.sleep(0.02)
                with guard:
                    inside[0] -= 1
                turns.append(n)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(overlaps) == 1                  # never two holders at once
    assert sorted(turns) == sorted([0, 1, 2, 3] * 3)   # and everyone got its turns
    assert "Stage/.f.lock" not in [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_exactly_one_conditional_create_wins_each_key(s3):
    client, bucket = s3
    winners = {}

    def grab(n):
        for k in range(30):
            lock = S3Lock(client, bucket, f"k{k}.lock", f"k{k}", ttl=30)
            try:
                lock.etag = lock._put(IfNoneMatch="*")
                winners.setdefault(k, []).append(n)
            except Exception as err:
                assert err.response["ResponseMetadata"]["HTTPStatusCode"] in (409, 412)
    threads = [threading.Thread(target=grab, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(winners) == list(range(30)) and all(len(w) == 1 for w in winners.values())


def test_a_dead_holders_lock_is_taken_over_after_its_lease_and_it_is_fenced_off(s3):
    client, bucket = s3
    paused = S3Lock(client, bucket, "x.lock", "x", ttl=0.5)
    paused.acquire()            # holds it, but never renews: a dead or paused worker
    paused.check()              # still its own
    taker = S3Lock(client, bucket, "x.lock", "x", ttl=0.5, poll=0.05)
    taker.acquire()             # returns only after the lease ran out without renewal
    with pytest.raises(UserError, match="lost the lock on x"):
        paused.check()          # the paused worker may not mark anything complete now
    taker.check()
    paused.release()            # does not delete the successor's lock
    taker.check()


def test_a_renewing_holder_keeps_its_lock_whatever_the_clocks_say(s3):
    client, bucket = s3
    holder = S3Lock(client, bucket, "y.lock", "y", ttl=0.6)
    # A clock far behind: every body says the lease expired long ago (the renewal count still
    # changes the body, hence the ETag, as the real body's does).
    holder._body = lambda: json.dumps({"owner": "skewed", "ttl_s": 0.6, "expires": 0,
                                       "renewal": holder._renewals}).encode()
    holder.__enter__()
    try:
        waiter = S3Lock(client, bucket, "y.lock", "y", ttl=0.6, poll=0.05)
        got = threading.Event()
        t = threading.Thread(target=lambda: (waiter.acquire(), got.set()), daemon=True)
        t.start()
        # Renewed every 0.2 s: the ETag keeps changing, so the waiter never sees a stale lease,
        # even though the body says it expired long ago.
        assert not got.wait(2.0)
        holder.check()
    finally:
        holder.__exit__(None, None, None)
    assert got.wait(10)         # released: the waiter gets it at once
    waiter.release()
