"""The one S3 client of the pipeline, and its errors as one line naming the fix.

boto3 is imported here only, when an s3:// URI is used: it is the optional `[s3]` extra.
Everything is configured by the standard AWS environment variables. Two settings are forced
because S3-compatible servers need them: checksums only where the API requires them (Ceph 16
refuses the SDK's streamed trailing checksums), and bounded retries and timeouts (a dead
server is reported in seconds, not minutes).
"""
from __future__ import annotations

import contextlib
import functools
import os

from stages.errors import UserError

INSTALL = "pip install -e '.[s3]'"


def _boto():
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError:
        raise UserError(f"an s3:// location needs boto3, which is not installed: run {INSTALL}") from None
    return boto3, botocore


def make_client(read_timeout=60, retries=2):
    """The client; `retries`: extra attempts of a failed request (corpus.retries for sources)."""
    boto3, botocore = _boto()
    config = botocore.config.Config(
        request_checksum_calculation="when_required", response_checksum_validation="when_required",
        retries={"max_attempts": retries + 1, "mode": "standard"}, connect_timeout=5,
        read_timeout=read_timeout, max_pool_connections=16)
    try:
        return boto3.session.Session().client("s3", config=config,
                                              region_name=os.environ.get("AWS_REGION") or "us-east-1")
    except botocore.exceptions.BotoCoreError as err:
        raise UserError(f"cannot set up the S3 client ({err}): check the AWS_* environment "
                        "variables") from None


@functools.lru_cache(maxsize=1)
def transfer_config():
    """Multipart in 8 MB parts, 4 at a time: memory stays bounded whatever the file size."""
    import boto3.s3.transfer
    return boto3.s3.transfer.TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20,
                                            max_concurrency=4)


def error_code(err) -> str:
    """The S3 error code of a botocore ClientError ("NoSuchKey", "404", ...); "" for others."""
    return getattr(err, "response", {}).get("Error", {}).get("Code", "")


def _endpoint():
    return os.environ.get("AWS_ENDPOINT_URL") or "the AWS default endpoint"


def describe(err, what, uri, bucket) -> str:
    """One line for an S3 failure: what was being done, to what, why, and the fix."""
    _, botocore = _boto()
    exc = botocore.exceptions
    if isinstance(err, (exc.EndpointConnectionError, exc.ConnectTimeoutError)):
        return (f"cannot reach the object store at {_endpoint()} while {what} {uri} (connection "
                "refused or timed out): start it or fix AWS_ENDPOINT_URL, then rerun")
    if isinstance(err, (exc.ConnectionClosedError, exc.ReadTimeoutError, exc.ConnectionError)):
        return (f"the object store at {_endpoint()} went away while {what} {uri}: nothing was "
                "marked complete; rerun when it is back")
    if isinstance(err, exc.NoCredentialsError):
        return f"no S3 credentials while {what} {uri}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if isinstance(err, exc.ClientError):
        code = error_code(err)
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket",) or (code in ("404", "NotFound") and what == "opening"):
            return (f"bucket {bucket!r} does not exist at {_endpoint()}: create it (aws s3 mb "
                    f"s3://{bucket}) or fix artifacts_dir")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403") or status == 403:
            return (f"the object store refused the credentials while {what} {uri} ({code}): check "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        return f"the object store answered {code or status} while {what} {uri}: {err}"
    if type(err).__name__ == "S3UploadFailedError":   # boto3's wrapper of a failed transfer
        return (f"upload of {uri} failed ({' '.join(str(err).split())}): nothing was marked "
                "complete; rerun when the object store is back")
    if isinstance(err, exc.BotoCoreError):
        return f"S3 error while {what} {uri}: {err}"
    return None


@contextlib.contextmanager
def explain(what, uri, bucket, missing=None):
    """Turn S3 failures inside the block into UserError (NoSuchKey into `missing`, if given)."""
    try:
        yield
    except UserError:
        raise
    except Exception as err:
        if missing is not None and error_code(err) in ("NoSuchKey", "404"):
            raise missing(uri) from None
        text = describe(err, what, uri, bucket)
        if text is None:
            raise
        raise UserError(text) from None
