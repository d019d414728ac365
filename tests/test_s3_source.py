"""Corpus source kind `s3` (stages/s3_source.py) against moto's server."""

import pytest

from stages import s3_client
from stages.errors import UserError
from stages.sources import corpus_identity, fetch_corpus
from tests.s3_support import moto_server  # noqa: F401 (fixture)


@pytest.fixture
def corpus(moto_server, monkeypatch):  # noqa: F811
    for key, value in moto_server.env.items():
        monkeypatch.setenv(key, value)
    bucket = moto_server.bucket()
    client = moto_server.client()
    client.put_object(Bucket=bucket, Key="plays/b.txt", Body="ROMEO:\r\nSecond.\r\n".encode())
    client.put_object(Bucket=bucket, Key="plays/a.txt", Body="JULIET:\nFirst.".encode())
    client.put_object(Bucket=bucket, Key="plays/notes.md", Body=b"not a play")
    calls = []
    real = s3_client.make_client

    def counting(**kw):
        c = real(**kw)
        c.meta.events.register("before-call.s3.GetObject", lambda **kw: calls.append(1))
        return c
    monkeypatch.setattr(s3_client, "make_client", counting)
    return client, bucket, [{"kind": "s3", "uri": f"s3://{bucket}/plays/"}], calls


def test_fetch_honours_the_corpus_timeout_and_retries(corpus, tmp_path):
    _, _, sources, _ = corpus
    seen = []
    real = s3_client.make_client
    s3_client.make_client = lambda **kw: (seen.append(kw), real(**kw))[1]
    try:
        fetch_corpus(sources, tmp_path / "corpus.txt", timeout=7, retries=1)
    finally:
        s3_client.make_client = real
    assert seen and all(kw == {"read_timeout": 7, "retries": 1} for kw in seen)


def test_objects_are_read_in_key_order_like_local_files(corpus, tmp_path):
    _, _, sources, _ = corpus
    result = fetch_corpus(sources, tmp_path / "corpus.txt")
    assert (tmp_path / "corpus.txt").read_text() == "JULIET:\nFirst.\nROMEO:\nSecond.\n"
    assert result["chars"] == len("JULIET:\nFirst.\nROMEO:\nSecond.\n")


def test_identity_lists_without_downloading_and_follows_every_change(corpus):
    client, bucket, sources, calls = corpus
    first = corpus_identity(sources)
    assert corpus_identity(sources) == first and calls == []     # ETags and sizes only
    client.put_object(Bucket=bucket, Key="plays/a.txt", Body="JULIET:\nChanged.".encode())
    second = corpus_identity(sources)
    assert second != first
    client.put_object(Bucket=bucket, Key="plays/c.txt", Body=b"more")
    assert corpus_identity(sources) not in (first, second)
    client.put_object(Bucket=bucket, Key="plays/zz.md", Body=b"ignored")
    assert calls == []


def test_an_empty_prefix_is_a_one_line_error(corpus):
    _, bucket, _, _ = corpus
    with pytest.raises(UserError, match="no .txt objects under"):
        corpus_identity([{"kind": "s3", "uri": f"s3://{bucket}/nothing/"}])
    with pytest.raises(UserError, match="uri: s3://bucket/prefix"):
        corpus_identity([{"kind": "s3", "uri": "plays/"}])
