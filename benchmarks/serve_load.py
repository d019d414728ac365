"""Load on `python -m pipeline serve`: N concurrent streaming clients against `generate`'s own speed.

    OPENBLAS_NUM_THREADS=1 python benchmarks/serve_load.py [--clients 1 4 16 64] [--chars 500]
        [--repeats 3] [--hidden 384 --layers 2] [--out benchmarks/results/serve-load.jsonl]

The model is a 2x384 network with its random initial weights, written by this script with a
vocabulary of 65 characters (speed does not depend on the weights). The server runs in its own
process on 127.0.0.1 with a free port; the clients are plain asyncio sockets in this process
(light, so they take little CPU from the server). For each N and repeat, in this order:
- `generate`: stages.generate.generate_stream with --num N (the CLI's code, in this process,
  the server idle), total chars/s;
- `serve`: N clients each POST /api/generate/stream for --chars characters (seed = client
  number) at the same moment: time to first character (first `text` event), chars/s per client
  (its characters / its request's duration) and in total (all characters / wall time), errors.
Then a disconnect check: 16 clients stream long texts and all leave about 1 s after their first
character; the server's CPU use (from /proc, in cores) is read while they stream and over the
two seconds after they left. Every client is bounded by --timeout.
Prints JSON lines (medians over repeats) and appends them to --out.
"""
import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from model import CIFGLSTM, save_checkpoint  # noqa: E402
from stages.generate import GenerateSettings, generate_stream  # noqa: E402
from stages.vocab import Vocab  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PRIME = "ROMEO:"


def make_model(folder, hidden, layers):
    vocab = Vocab(chars=tuple(chr(32 + i) for i in range(64)) + ("~",), counts=(1,) * 65)
    net = CIFGLSTM(vocab.size, hidden, layers, vocab.size, seed=0, char_inputs=True)
    save_checkpoint(folder / "best.ckpt", {"params": net.flat}, {"model": net.config(), "step": 0})
    vocab.save(folder / "vocab.json")
    return net, vocab


def start_server(ckpt, max_length, clients):
    cmd = [sys.executable, "-m", "pipeline", "serve", "--checkpoint", str(ckpt), "--port", "0",
           "--max-length", str(max_length), "--max-concurrent", str(clients)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env=env)
    for line in proc.stderr:                 # "serving model <fp> on http://127.0.0.1:PORT/"
        if line.startswith("serving model"):
            port = int(line.rsplit(":", 1)[1].strip(" /\n"))
            break
    else:
        raise SystemExit("the server did not start")
    subprocess.Popen(["cat"], stdin=proc.stderr, stdout=subprocess.DEVNULL)   # keep it drained
    return proc, port


async def client(port, body, timeout, leave_after=None):
    """One streaming request: (seconds to first text event, seconds in all, text) or an error."""
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    writer.write(f"POST /api/generate/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                 "Connection: close\r\n\r\n".encode() + data)
    first, buf = None, b""
    try:
        async with asyncio.timeout(timeout):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                buf += chunk
                if first is None and b"event: text" in buf:
                    first = time.perf_counter() - t0
                    if leave_after is not None:
                        await asyncio.sleep(leave_after)
                        return None
    finally:
        writer.close()
    if not buf.startswith(b"HTTP/1.1 200") or b"event: done" not in buf:
        raise RuntimeError(buf[:200].decode(errors="replace"))
    done = buf[buf.index(b"event: done"):].split(b"data: ", 1)[1].split(b"\n", 1)[0]
    return first, time.perf_counter() - t0, json.loads(done)["texts"][0]["text"]


async def load(port, n, chars, timeout):
    t0 = time.perf_counter()
    bodies = [{"prime": PRIME, "length": chars, "seed": i} for i in range(n)]
    results = await asyncio.gather(*(client(port, b, timeout) for b in bodies),
                                   return_exceptions=True)
    wall = time.perf_counter() - t0
    ok = [r for r in results if not isinstance(r, BaseException)]
    return ok, len(results) - len(ok), wall


def generate_rate(net, vocab, n, chars):
    t0 = time.perf_counter()
    for _ in generate_stream(net, vocab, vocab.encode(PRIME), GenerateSettings(length=chars, num=n)):
        pass
    return n * chars / (time.perf_counter() - t0)


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def disconnect_check(proc, port, n=16):
    """All clients leave at once: the server's CPU use (cores) before, and in the two seconds after."""
    clients = asyncio.gather(*(client(port, {"prime": PRIME, "length": 100000, "seed": i}, 60,
                                          leave_after=1.0) for i in range(n)))
    await asyncio.sleep(0.5)
    cb, tb = cpu_seconds(proc.pid), time.perf_counter()
    await asyncio.sleep(0.4)
    before = (cpu_seconds(proc.pid) - cb) / (time.perf_counter() - tb)
    await clients
    c0, t0 = cpu_seconds(proc.pid), time.perf_counter()
    await asyncio.sleep(1.0)
    c1, t1 = cpu_seconds(proc.pid), time.perf_counter()
    await asyncio.sleep(1.0)
    c2, t2 = cpu_seconds(proc.pid), time.perf_counter()
    return {"case": "disconnect", "clients": n, "cpu_before": round(before, 3), "cpu_0_1s": round((c1 - c0) / (t1 - t0), 3),
            "cpu_1_2s": round((c2 - c1) / (t2 - t1), 3)}


def quantile(xs, q):
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] if len(xs) > 1 else xs[0]


def summary(n, chars, runs, gen_rates, equal):
    med = lambda key: round(statistics.median(r[key] for r in runs), 4)   # noqa: E731
    row = {"case": "serve", "clients": n, "chars": chars, "repeats": len(runs),
           "ttfc_p50_s": med("p50"), "ttfc_p95_s": med("p95"),
           "client_chars_per_s": round(med("per_client")), "total_chars_per_s": round(med("total")),
           "errors": sum(r["errors"] for r in runs),
           "generate_num_n_chars_per_s": round(statistics.median(gen_rates))}
    row["total_over_generate"] = round(row["total_chars_per_s"] / row["generate_num_n_chars_per_s"], 3)
    row["texts_equal_to_generate"] = equal
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    p.add_argument("--chars", type=int, default=500)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per client at most")
    p.add_argument("--out", help="append the JSON lines to this file")
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="serve-load-"))
    net, vocab = make_model(folder, args.hidden, args.layers)
    proc, port = start_server(folder / "best.ckpt", 100000, max(args.clients))
    rows = []
    try:
        for n in args.clients:
            runs, gen_rates, equal = [], [], None
            for rep in range(args.repeats):
                gen_rates.append(generate_rate(net, vocab, n, args.chars))
                ok, errors, wall = asyncio.run(load(port, n, args.chars, args.timeout))
                ttfc = [r[0] for r in ok] or [float("nan")]
                runs.append({"p50": statistics.median(ttfc), "p95": quantile(ttfc, 95),
                             "per_client": statistics.median(args.chars / r[1] for r in ok) if ok else 0,
                             "total": len(ok) * args.chars / wall, "errors": errors})
                if rep == 0:       # the texts against generate's with the same seed, alone
                    equal = f"{sum(r[2] == solo(net, vocab, i, args.chars) for i, r in enumerate(ok))}/{n}"
            rows.append(summary(n, args.chars, runs, gen_rates, equal))
            print(json.dumps(rows[-1]), flush=True)
        rows.append(asyncio.run(disconnect_check(proc, port)))
        print(json.dumps(rows[-1]), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
    meta = {"hidden": args.hidden, "layers": args.layers, "threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "when": time.strftime("%Y-%m-%d %H:%M")}
    if args.out:
        with open(args.out, "a") as fh:
            fh.writelines(json.dumps({**meta, **r}) + "\n" for r in rows)


def solo(net, vocab, seed, chars):
    s = GenerateSettings(length=chars, seed=seed)
    return "".join(piece for _, piece in generate_stream(net, vocab, vocab.encode(PRIME), s))


if __name__ == "__main__":
    main()
