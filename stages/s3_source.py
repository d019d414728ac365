"""Corpus source kind `s3`: the `.txt` objects under a prefix, read in key order.

    corpus:
      sources:
        - {kind: s3, uri: "s3://bucket/plays/"}

The identity (what Download's fingerprint folds in) is the list of (key, ETag, size) from one
listing: a rerun with unchanged objects downloads nothing, and any changed, added or removed
object moves the fingerprint. Objects are streamed through the same UTF-8 decoding as local
files, so memory does not grow with their size. Credentials and endpoint: the AWS_* variables.
"""
from __future__ import annotations

import json

from stages.errors import UserError
from stages.text import TallyWriter, decode_utf8

_CHUNK = 1 << 20


def _split(uri: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://") or len(uri) <= 5:
        raise UserError(f"s3 source needs `uri: s3://bucket/prefix`, not {uri!r}: fix the corpus source")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix


class S3Source:
    def name(self, source: dict) -> str:
        return source.get("uri", "s3")

    def _objects(self, source: dict, client=None) -> list[dict]:
        from stages.s3_client import explain, make_client   # boto3: the [s3] extra
        bucket, prefix = _split(source.get("uri"))
        client, found = client or make_client(), []
        with explain("listing", source["uri"], bucket):
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                found += [o for o in page.get("Contents", []) if o["Key"].endswith(".txt")]
        if not found:
            raise UserError(f"no .txt objects under {source['uri']}: fix the `uri:` of this source")
        return sorted(found, key=lambda o: o["Key"])

    def identity(self, source: dict) -> str:
        return json.dumps([[o["Key"], o["ETag"].strip('"'), o["Size"]] for o in self._objects(source)])

    def fetch(self, source: dict, out, *, timeout: float, retries: int) -> None:
        from stages.s3_client import explain, make_client
        bucket, _ = _split(source.get("uri"))
        # corpus.timeout_s bounds each read, corpus.retries the extra attempts of each request
        client = make_client(read_timeout=timeout, retries=retries)
        tally = TallyWriter(out, hashed=False)
        for obj in self._objects(source, client):
            tally.end_line()
            label = f"s3://{bucket}/{obj['Key']}"
            with explain("downloading", label, bucket):
                body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
                for text in decode_utf8(body.iter_chunks(_CHUNK), label):
                    tally.write(text)
