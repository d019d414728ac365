"""Faults with `artifacts_dir: s3://...`, as data: tests/test_s3_*.py run them against radosgw.

Same shape as tests/reliability_cases.py (and rendered into the same docs/reliability.md).
Each "machine" is a worker process with a local cache of its own; only the bucket is shared.
`sees` is what the *rerun* (or the waiting worker) prints when the exit column names one.
"""
from tests.reliability_cases import STAGES, UP_TO, Case

SAME = "the rerun on another machine (empty cache) completes with the same bits as an uninterrupted run"
T = "*/Train/*/"


def server_kill(id, fault, pattern, kept, sees, note=SAME):
    """radosgw SIGKILLed just before the first write of a key matching `pattern`, then restarted."""
    return Case(id, fault, sees, kept, note, "server killed: non-zero; rerun 0",
                spec={"pattern": pattern, "nth": 1})


SERVER_KILLS = [
    server_kill("s3-server-mid-upload", "S3 server killed as EncodeShards uploads train.tokens",
                "*/EncodeShards/*/train.tokens", UP_TO["BuildVocab"], "EncodeShards done:"),
    server_kill("s3-server-mid-checkpoint", "S3 server killed as Train uploads its step-12 checkpoint",
                T + "checkpoints/step-00000012.ckpt", UP_TO["EncodeShards"],
                "resumed from step-00000006.ckpt"),
    server_kill("s3-server-mid-marker", "S3 server killed as Sample writes its `_COMPLETE` object",
                "*/Sample/*/_COMPLETE", UP_TO["Train"], "Sample done:"),
]

# A 12 MB file goes up as two parts (8 MB + 4 MB); the fault strikes after a part has landed.
MULTIPART = [
    Case("s3-server-mid-multipart", "S3 server killed between the parts of a multipart upload",
         "the object store", (),
         "no object appears under the key (an unfinished multipart upload is invisible); the "
         "retried upload after the server is back stores the whole file",
         "server killed: non-zero; retry 0", spec={"who": "server"}),
    Case("s3-worker-mid-multipart", "worker SIGKILLed between the parts of a multipart upload",
         "", (), "no object appears under the key; another worker's upload stores the whole file",
         "killed; retry 0", spec={"who": "worker"}),
]

WORKERS = [
    Case("s3-worker-killed", "worker SIGKILLed just after a checkpoint reached its local cache, "
         "before its upload", "resumed from step-00000006.ckpt", UP_TO["EncodeShards"],
         "the lock it left is taken over after its lease (`took over the lock`); " + SAME,
         "killed; rerun 0", spec={"pattern": "*/checkpoints/step-00000012.ckpt"}),
    Case("s3-worker-paused", "worker SIGSTOPped in Train past its lease; another machine starts, "
         "then the paused one is continued", "lost the lock on", STAGES,
         "the other machine takes the lock over and builds every stage; the paused one marks "
         "nothing complete; the store holds the same bits as an uninterrupted run",
         "paused: non-zero; other 0"),
    Case("s3-two-machines", "two machines start the same pipeline at once", "done:", STAGES,
         "each stage is built exactly once, the other machine waits on the lock and reuses it; "
         "no lock object is left", "0 and 0"),
]

MISTAKES = [
    Case("s3-wrong-credentials", "wrong AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
         "refused the credentials", (), "fix the credentials and rerun", spec={"case": "credentials"}),
    Case("s3-no-bucket", "artifacts_dir names a bucket that does not exist",
         "bucket 'no-such-bucket' does not exist", (), "create the bucket or fix artifacts_dir",
         spec={"case": "bucket"}),
    Case("s3-refused", "nothing listens at AWS_ENDPOINT_URL",
         "cannot reach the object store at http://127.0.0.1:9", (), "start the server or fix the "
         "endpoint", spec={"case": "refused"}),
    Case("s3-no-boto3", "artifacts_dir on s3:// without the `[s3]` extra installed",
         "pip install -e '.[s3]'", (), "install the extra"),
]

S3_CASES = SERVER_KILLS + MULTIPART + WORKERS + MISTAKES
