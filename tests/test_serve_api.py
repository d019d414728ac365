"""The HTTP API against a running `python -m pipeline serve` on loopback: same texts and nats as
`generate --format json`, streaming, scoring, identity, batching, disconnects and the cap."""
import json
import socket
from contextlib import ExitStack

import numpy as np
import pytest

httpx = pytest.importorskip("httpx", reason="the API tests need the test extra: pip install -e '.[test]'")
pytest.importorskip("starlette", reason="serve needs the extra: pip install -e '.[serve]'")

from model.evaluate import evaluate_stream  # noqa: E402
from pipeline.cli import main  # noqa: E402
from stages.generate import nats_of  # noqa: E402
from tests.serve_support import Server, model_world, wait_until  # noqa: E402

MAX_LENGTH = 400000        # long enough that a generation cannot end before the client leaves


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    cfg, vocab, net, folder = model_world(tmp_path_factory.mktemp("serve"))
    server = Server(cfg, "--max-length", str(MAX_LENGTH), "--max-concurrent", "6")
    yield type("World", (), {"cfg": cfg, "vocab": vocab, "net": net, "folder": folder,
                             "server": server, "http": httpx.Client(base_url=server.url, timeout=60)})
    server.stop()
    assert "Traceback" not in server.log()


def cli_json(world, capsys, body):
    """`python -m pipeline generate --format json` with the options of an API body."""
    args = ["generate", "--config", world.cfg, "--format", "json"]
    for key, value in body.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    assert main(args) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def stream(world, body):
    """The (event, data) pairs of one streamed generation."""
    events = []
    with world.http.stream("POST", "/api/generate/stream", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
    return events


CASES = [
    {"prime": "ROMEO:", "length": 120, "seed": 7},
    {"prime": "KING HENRY:\n", "length": 90, "num": 3, "seed": 11, "temperature": 0.7,
     "top_k": 12, "top_p": 0.9},
    {"prime": "the", "length": 60, "strategy": "greedy"},
    {"prime": "NURSE:", "length": 80, "strategy": "redraw_once", "seed": 3},
    {"prime": "ROMEO:", "length": 200, "num": 2, "seed": 2, "stop": "\n\n"},
    {"prime": "JULIET:", "length": 50, "strategy": "beam", "beam_width": 3, "num": 2,
     "no_repeat_ngram": 6, "length_penalty": 0.5},
]


@pytest.mark.parametrize("body", CASES, ids=lambda b: b.get("strategy", "sample"))
def test_generate_equals_the_cli_json(world, capsys, body):
    r = world.http.post("/api/generate", json=body)
    assert r.status_code == 200
    api, cli = r.json()["texts"], cli_json(world, capsys, body)
    assert [t["text"] for t in api] == [t["text"] for t in cli]
    for a, c in zip(api, cli):
        if body.get("strategy") == "beam":      # the CLI's own forward pass: the same numbers
            assert (a["nats"], a["nats_per_char"]) == (c["nats"], c["nats_per_char"])
        else:                                   # from the sampling logits: float32 rounding apart
            assert a["nats"] == pytest.approx(c["nats"], rel=1e-5)
            assert a["nats_per_char"] == pytest.approx(c["nats_per_char"], rel=1e-5)
    for t in r.json()["texts"]:             # per-character nats add up to the text's nats
        assert len(t["char_nats"]) == len(t["text"])
        assert sum(t["char_nats"]) == pytest.approx(t["nats"], abs=1e-3)


def test_stream_sends_characters_as_they_are_drawn(world):
    body = {"prime": "ROMEO:", "length": 3000, "seed": 4, "num": 2}
    events = stream(world, body)
    kinds = [e for e, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("text") >= 2
    texts = ["", ""]
    for event, data in events:
        for index, text, probs in data.get("pieces", []):
            texts[index] += text
            assert len(probs) == len(text) and all(0 < p <= 1 for p in probs)
    done = events[-1][1]["texts"]
    assert texts == [t["text"] for t in done]
    assert done == world.http.post("/api/generate", json=body).json()["texts"]


def test_stream_probabilities_are_the_models(world):
    body = {"prime": "ROMEO:", "length": 40, "seed": 1, "temperature": 0.5}
    events = stream(world, body)
    probs = [p for e, d in events if e == "text" for _, _, ps in d["pieces"] for p in ps]
    char_nats = events[-1][1]["texts"][0]["char_nats"]
    assert np.allclose(-np.log(probs), char_nats, rtol=0, atol=1e-3)     # 4 significant digits


def test_score_is_the_held_out_loss_and_the_generation_nats(world):
    text = "ROMEO:\nThe good lord of thy heart.\n"
    r = world.http.post("/api/score", json={"text": text}).json()
    ids = world.vocab.encode(text)
    assert r["chars"] == list(text) and r["char_nats"][0] is None and r["scored"] == len(text) - 1
    assert r["nats_per_char"] == evaluate_stream(world.net, ids, lanes=1)["nats_per_char"]
    primed = world.http.post("/api/score", json={"prime": "ROMEO:", "text": "\nThe"}).json()
    assert (primed["nats"], primed["nats_per_char"]) == nats_of(
        world.net, world.vocab.encode("ROMEO:"), world.vocab.encode("\nThe"))
    assert None not in primed["char_nats"]


def test_identity(world):
    m = world.http.get("/api/model").json()
    meta = json.loads((world.folder / "meta.json").read_text())
    assert m["fingerprint"] == meta["fingerprint"][:16] and m["steps"] == 10
    assert m["validation_nats_per_char"] == 1.5 and m["vocab_size"] == world.vocab.size
    assert m["model"] == {"cell": "cifg", "hidden_size": 16, "num_layers": 1}


def test_concurrent_requests_share_the_batched_steps(world):
    """Four streams at once: all complete, and the scheduler stepped them together.

    Each of the four needs 3,000 batched steps of its own, so the counter must move by at least
    3,000 (a counter that never moves fails here); stepped one request at a time they would take
    12,000. Stepped together they take 3,000 plus how far apart they joined (3,084 and 3,727
    in two runs on a loaded 2-core machine), so the bound below leaves room for a slow start
    and still fails a scheduler that steps the requests one after another."""
    assert wait_until(lambda: _idle(world), timeout=10)    # no other request's steps counted
    before = world.http.get("/api/status").json()["steps"]
    bodies = [{"prime": "ROMEO:", "length": 3000, "seed": s} for s in range(4)]
    with httpx.Client(base_url=world.server.url, timeout=60) as c, ExitStack() as opened:
        streams = [opened.enter_context(c.stream("POST", "/api/generate/stream", json=b))
                   for b in bodies]
        lines = [s.iter_lines() for s in streams]
        for it in lines:                          # every request is running now
            assert next(it) == "event: start"
        ends = [[line for line in it if line.startswith("event: ")][-1] for it in lines]
    assert ends == ["event: done"] * 4
    steps = world.http.get("/api/status").json()["steps"] - before
    assert 3000 <= steps < 3 * 3000, steps


def _idle(world):
    s = world.http.get("/api/status").json()
    return s["running"] == 0 and s["sampled_requests"] == 0 and s["beam_searches"] == 0


def _raw_post(world, path, body):
    """A POST on a plain socket, to leave without reading the answer."""
    host, port = world.server.url[7:-1].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    data = json.dumps(body).encode()
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return sock


@pytest.mark.parametrize("path", ["/api/generate/stream", "/api/generate"])
def test_a_client_that_leaves_stops_its_generation(world, path):
    sock = _raw_post(world, path, {"prime": "ROMEO:", "length": MAX_LENGTH})
    assert wait_until(lambda: world.http.get("/api/status").json()["sampled_requests"] == 1)
    if path.endswith("stream"):
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")     # characters are flowing
    sock.close()
    assert wait_until(lambda: _idle(world), timeout=10)
    steps = world.http.get("/api/status").json()["steps"]
    assert not wait_until(lambda: world.http.get("/api/status").json()["steps"] != steps, timeout=0.5)


def test_a_client_that_leaves_stops_its_beam_search(world):
    sock = _raw_post(world, "/api/generate/stream", {"prime": "ROMEO:", "length": MAX_LENGTH,
                                                     "strategy": "beam", "beam_width": 2})
    assert wait_until(lambda: world.http.get("/api/status").json()["beam_searches"] == 1)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    sock.close()
    assert wait_until(lambda: _idle(world), timeout=10)


def test_the_cap_on_concurrent_generations(world):
    socks = [_raw_post(world, "/api/generate/stream", {"length": MAX_LENGTH}) for _ in range(6)]
    try:
        assert wait_until(lambda: world.http.get("/api/status").json()["running"] == 6)
        r = world.http.post("/api/generate", json={"length": 5})
        assert r.status_code == 429 and "--max-concurrent" in r.json()["error"]
    finally:
        for s in socks:
            s.close()
    assert wait_until(lambda: _idle(world))
    assert world.http.post("/api/generate", json={"length": 5}).status_code == 200
