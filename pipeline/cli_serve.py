"""`python -m pipeline serve`: the model behind an HTTP API and a page, in one process.

The model is picked exactly as `generate` picks it (pipeline/cli_models.py). The web stack
(Starlette, uvicorn) is the optional extra `serve`; without it this command is one line saying
how to install it.
"""
import ipaddress
import os
import socket
import sys
from pathlib import Path

from model import load_model
from stages.errors import UserError
from stages.text import sha256_file
from stages.vocab import Vocab

from .cli_models import add_model_arguments, choose
from .runs import read_meta

TOKEN_ENV = "SHAKESPEARE_SERVE_TOKEN"
INSTALL = "pip install -e '.[serve]'"


def add_parser(sub, **kw):
    from server.inputs import Limits
    d = Limits()
    g = sub.add_parser("serve", help="serve the model: a JSON API and a page to write with it",
                       description="Serve a trained model over HTTP: a JSON API (generate, "
                       "stream, score, identity) and a page at /. Needs " + INSTALL + ".", **kw)
    g.add_argument("--config", default="pipeline.yaml", help="config whose trained model to use")
    add_model_arguments(g)
    n = g.add_argument_group("network")
    n.add_argument("--host", default="127.0.0.1", help="address to listen on; anything but "
                   "loopback prints a warning")
    n.add_argument("--port", type=int, default=8000, help="port (0: any free one, printed)")
    n.add_argument("--token", default=os.environ.get(TOKEN_ENV) or None,
                   help=f"require this bearer token on every route (default: ${TOKEN_ENV}; unset: none)")
    lim = g.add_argument_group("limits")
    lim.add_argument("--max-length", type=int, default=d.max_length, help="characters per text")
    lim.add_argument("--max-concurrent", type=int, default=d.max_concurrent,
                     help="generations and scorings at once; more get 429")
    lim.add_argument("--max-body", type=int, default=d.max_body, help="bytes of a request body")
    return g


def identity(ckpt, meta, net, vocab):
    """What /api/model reports: which model this is and how good it was."""
    run = read_meta(Path(ckpt).parent) or {}
    result = run.get("result", {})
    fingerprint = run.get("fingerprint") or sha256_file(ckpt)
    return {"fingerprint": fingerprint[:16], "checkpoint": Path(ckpt).name,
            "steps": meta.get("step", result.get("steps")),
            "validation_nats_per_char": result.get("best_val_nats_per_char"),
            "vocab_size": vocab.size, "vocab": "".join(vocab.chars),
            "model": {"cell": net.cell, "hidden_size": net.H, "num_layers": net.L}}


def is_loopback(host):
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        raise UserError(f"--host {host} is not an address of this machine; use 127.0.0.1") from None
    return all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def bind(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror}); choose another --port "
                        "(0 picks a free one)") from None
    sock.listen(128)
    return sock


def check_limits(args):
    for name in ("max_length", "max_concurrent", "max_body"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {args.port}")


def run(args, err=None):
    err = err or sys.stderr
    try:
        import uvicorn
        from server.app import Service, build_app
        from server.inputs import Limits
    except ImportError as e:
        raise UserError(f"serve needs the optional web stack ({e.name} is missing); install it "
                        f"with {INSTALL}") from None
    check_limits(args)
    ckpt, vocab_path = choose(args.config, args.checkpoint, args.train,
                              note=lambda msg: print(msg, file=err))
    net, meta = load_model(ckpt)
    vocab = Vocab.load(vocab_path)
    loopback = is_loopback(args.host)
    sock = bind(args.host, args.port)
    if not loopback:
        print(f"warning: listening on {args.host}, not loopback: anyone who can reach this "
              f"machine can use the model{'' if args.token else '; set --token or $' + TOKEN_ENV}",
              file=err)
    limits = Limits(max_length=args.max_length, max_concurrent=args.max_concurrent,
                    max_body=args.max_body)
    service = Service(net, vocab, identity(ckpt, meta, net, vocab), limits)
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    print(f"serving model {service.identity['fingerprint']} on {url}", file=err, flush=True)
    config = uvicorn.Config(build_app(service, args.token, loopback), log_level="info",
                            timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
