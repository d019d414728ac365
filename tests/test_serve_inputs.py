"""Bad input gets a 4xx with one line of JSON, never a 500 or a traceback; the token and the
loopback Host check guard every route; `serve` without the extra is a one-line error."""
import json
import subprocess
import sys

import pytest

httpx = pytest.importorskip("httpx", reason="the API tests need the test extra: pip install -e '.[test]'")
pytest.importorskip("starlette", reason="serve needs the extra: pip install -e '.[serve]'")

from pipeline import cli_serve  # noqa: E402
from pipeline.cli import main  # noqa: E402
from server.inputs import BadInput, parse_body  # noqa: E402
from tests.conftest import REPO  # noqa: E402
from tests.serve_support import Server, model_world  # noqa: E402

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    cfg, vocab, net, folder = model_world(tmp_path_factory.mktemp("inputs"))
    server = Server(cfg, "--max-length", "300", "--max-body", "2000")
    yield type("World", (), {"cfg": cfg, "server": server,
                             "http": httpx.Client(base_url=server.url, timeout=30)})
    server.stop()


def one_line_error(r, status):
    assert r.status_code == status, r.text
    assert r.text.count("\n") == 0 and set(r.json()) == {"error"}
    message = r.json()["error"]
    assert message and "\n" not in message and "Traceback" not in message
    return message


BAD_BODIES = [
    ('{"prime": "ROMEO:", ', "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"length": NaN}', "JSON does not allow"),
    ('{"lenght": 10}', "unknown field 'lenght'"),
    ('{"length": "10"}', "length must be an integer"),
    ('{"length": 10.0}', "length must be an integer"),
    ('{"length": true}', "length must be an integer"),
    ('{"length": 301}', "--max-length"),
    ('{"length": -1}', "length must be between 0 and 300"),
    ('{"num": 0}', "num must be between 1"),
    ('{"temperature": 0}', "temperature must be > 0"),
    ('{"temperature": "hot"}', "temperature must be a number"),
    ('{"top_p": 1.5}', "top_p must be in (0, 1]"),
    ('{"top_k": -2}', "top_k must be between 0"),
    ('{"seed": -1}', "seed must be between 0"),
    ('{"strategy": "nucleus"}', "strategy 'nucleus' is unknown"),
    ('{"strategy": "beam", "beam_width": 2, "num": 3}', "at most beam_width"),
    ('{"no_repeat_ngram": 1}', "no_repeat_ngram must be 0"),
    ('{"length_penalty": -1}', "length_penalty must be >= 0"),
    ('{"unknown": "drop"}', 'unknown must be "error" or "skip"'),
    ('{"prime": "ROMEO: \\u00e9\\u00e8"}', "prime has characters the model does not know"),
    ('{"prime": "\\u00e9", "unknown": "skip"}', "prime has no character the model knows"),
    ('{"stop": "\\u00e9"}', "stop has characters the model does not know"),
    ('{"prime": 5}', "prime must be a string"),
    ('{"prime": "%s", "num": 16}' % ("the " * 300), "send a shorter prime or fewer texts"),
]


@pytest.mark.parametrize("path", ["/api/generate", "/api/generate/stream"])
@pytest.mark.parametrize("raw,expect", BAD_BODIES, ids=[b for b, _ in BAD_BODIES])
def test_bad_generate_bodies(world, path, raw, expect):
    assert expect in one_line_error(world.http.post(path, content=raw, headers=JSON), 400)


@pytest.mark.parametrize("raw,expect", [
    ('{"prime": "ROMEO:"}', 'the field "text" is missing'),
    ('{"text": ""}', "text is empty"),
    ('{"text": "caf\\u00e9"}', "text has characters the model does not know"),
    ('{"text": "the", "window": 5}', "unknown field 'window'"),
])
def test_bad_score_bodies(world, raw, expect):
    assert expect in one_line_error(world.http.post("/api/score", content=raw, headers=JSON), 400)


def test_oversized_wrong_type_and_undecodable_bodies(world):
    big = json.dumps({"prime": "the " * 1000})
    assert "--max-body" in one_line_error(world.http.post("/api/generate", content=big, headers=JSON), 413)
    chunks = (b"{\"prime\": \"" + b"the " * 200 for _ in range(20))        # no Content-Length
    assert "--max-body" in one_line_error(world.http.post("/api/score", content=chunks, headers=JSON), 413)
    assert "Content-Type" in one_line_error(world.http.post("/api/generate", content="{}"), 415)
    assert "UTF-8" in one_line_error(world.http.post("/api/score", content=b'{"text": "\xff"}', headers=JSON), 400)
    assert "no such route" in one_line_error(world.http.get("/api/nothing"), 404)
    assert "not allowed" in one_line_error(world.http.get("/api/generate"), 405)


def test_deeply_nested_json_is_a_400_not_a_500(world):
    deep = "[" * 1999                       # under --max-body; 30,000 under the default limit
    for path in ("/api/generate", "/api/score"):
        assert "nested" in one_line_error(world.http.post(path, content=deep, headers=JSON), 400)
    with pytest.raises(BadInput, match="nested"):
        parse_body(b"[" * 30000)


def test_a_foreign_host_header_is_refused(world):
    r = world.http.get("/api/model", headers={"Host": "evil.example:8000"})
    assert "not this loopback server" in one_line_error(r, 400)
    assert world.http.get("/api/model", headers={"Host": "localhost"}).status_code == 200


def test_the_log_has_no_traceback_and_no_500(world):
    world.http.post("/api/generate", content="{", headers=JSON)
    log = world.server.log()
    assert "Traceback" not in log and " 500 " not in log and "ERROR" not in log


def test_the_token_guards_every_route(tmp_path):
    cfg = model_world(tmp_path)[0]
    server = Server(cfg, env={cli_serve.TOKEN_ENV: "s3cret"})
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            for method, path in (("GET", "/"), ("GET", "/api/model"), ("GET", "/static/app.js"),
                                 ("POST", "/api/generate"), ("POST", "/api/score")):
                one_line_error(c.request(method, path, json={"text": "the"}), 401)
                one_line_error(c.request(method, path, json={"text": "the"},
                                         headers={"Authorization": "Bearer wrong"}), 401)
            ok = c.get("/api/model", headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200
            assert c.get("/?token=wrong").status_code == 401
            r = c.get("/?token=s3cret&seed=4")      # the page's way in: a cookie, token out of the URL
            assert r.status_code == 303 and r.headers["location"] == "/?seed=4"
            assert "HttpOnly" in r.headers["set-cookie"] and "samesite=strict" in r.headers["set-cookie"].lower()
            c.cookies.set("serve_token", "s3cret")
            assert c.post("/api/score", json={"text": "the"}).status_code == 200
    finally:
        server.stop()


def test_binding_beyond_loopback_warns(world, capsys, monkeypatch):
    """(The test still binds 127.0.0.1: only the check is told it is not loopback.)"""
    import uvicorn
    monkeypatch.setattr(cli_serve, "is_loopback", lambda host: False)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    assert main(["serve", "--config", world.cfg, "--port", "0"]) == 0
    err = capsys.readouterr().err
    assert "warning: listening on 127.0.0.1, not loopback" in err and "--token" in err


def test_what_counts_as_loopback():
    assert cli_serve.is_loopback("127.0.0.1") and cli_serve.is_loopback("localhost")
    assert cli_serve.is_loopback("::1") and not cli_serve.is_loopback("192.0.2.1")
    assert not cli_serve.is_loopback("0.0.0.0")


def test_without_the_extra_serve_is_one_line(world):
    code = ("import sys; sys.modules['uvicorn'] = None; from pipeline.cli import main; "
            f"sys.exit(main(['serve', '--config', {world.cfg!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "pip install -e '.[serve]'" in r.stderr


@pytest.mark.parametrize("args,expect", [(["--port", "70000"], "--port must be between"),
                                         (["--max-length", "0"], "--max-length must be at least 1")])
def test_bad_options_are_one_line(world, capsys, args, expect):
    assert main(["serve", "--config", world.cfg, *args]) == 2
    err = capsys.readouterr().err
    assert expect in err and err.count("\n") == 1
