"""`python -m pipeline status | generate | score | models | gc | serve`: the pipeline from the terminal, without Luigi.

    python -m pipeline status [--config PATH]
    python -m pipeline generate --prime "ROMEO:" --length 500 --temperature 0.8
    python -m pipeline score FILE|- [--dynamic] [--format json]
    python -m pipeline models [--config PATH]
    python -m pipeline gc [--config PATH ...] [--yes]
    python -m pipeline serve [--port 8000]       (needs pip install -e '.[serve]')
"""
import argparse
import os
import sys

from stages.errors import UserError

from . import cli_generate, cli_score, cli_serve
from .config import load_config
from .cli_models import list_models
from .runs import complete
from .store import open_store
from .tasks import BuildVocab, Download, EncodeShards, Evaluate, Sample, Train

STAGES = (Download, BuildVocab, EncodeShards, Train, Sample, Evaluate)


def why(task):
    """Why this stage will run: the config keys and inputs that differ from its last run."""
    done = complete(task.folder().parent.parent, task.__class__.__name__)
    if not done:
        return "never run"
    prev = done[-1][1]
    reasons = [f"{k}: {prev['config'].get(k)!r} -> {v!r}" for k, v in task.slice().items()
               if prev["config"].get(k) != v]
    inputs = {t.__class__.__name__: t.fingerprint() for t in task.upstream()}
    reasons += [f"input {name} changed" for name, fp in inputs.items() if prev["inputs"].get(name) != fp]
    if task.identity() != prev.get("identity"):
        reasons.append("corpus content changed")
    return "; ".join(reasons) or "previous run incomplete or removed"


def status(args):
    for cls in STAGES:
        task = cls(config=args.config)
        done = task.complete()
        line = f"{cls.__name__:<13} {'cached' if done else 'to run':<7} {task.store.uri(task.folder())}"
        print(line if done else f"{line}\n{'':<22}why: {why(task)}")
    return 0


def gc(args):
    keep = set()
    for path in args.config:
        keep |= {cls(config=path).folder().resolve() for cls in STAGES}
    store = open_store(load_config(args.config[0]).artifacts_dir)
    stale = sorted(p for cls in STAGES for p in store.stage_folders(cls.__name__)
                   if p.resolve() not in keep)
    for p in stale:
        print(("removing " if args.yes else "would remove ") + store.uri(p))
        if args.yes:
            store.remove(p)
    if stale and not args.yes:
        print(f"{len(stale)} folder(s) unreachable from {', '.join(args.config)}; rerun with --yes to delete")
    return 0


class _Parser(argparse.ArgumentParser):
    """Option mistakes as one line naming the fix, like every other user mistake."""

    def error(self, message):
        self.exit(2, f"error: {message}; see `{self.prog} --help`\n")


class _Help(argparse.HelpFormatter):
    """Every option's help line ends with its default (unless it has none or says it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        unset = action.default in (None, False, argparse.SUPPRESS)
        if "default" in text or unset or not action.option_strings:
            return text
        return text + " (default: %(default)r)"


def parser():
    fmt = {"formatter_class": _Help}
    p = _Parser(prog="python -m pipeline", description=__doc__.splitlines()[0], **fmt)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    s = sub.add_parser("status", help="show each stage as cached or to run, and why", **fmt)
    s.add_argument("--config", default="pipeline.yaml", help="config to check")
    cli_generate.add_parser(sub, **fmt)
    cli_score.add_parser(sub, **fmt)
    m = sub.add_parser("models", help="list the trained models (fingerprint, differing config "
                       "keys, steps, best validation loss, date)", **fmt)
    m.add_argument("--config", default="pipeline.yaml",
                   help="config whose artifacts_dir to look in (its own model is marked *)")
    c = sub.add_parser("gc", help="remove outputs no longer reachable from the given configs", **fmt)
    c.add_argument("--config", action="append",
                   help="config(s) whose outputs to keep (repeatable; default: pipeline.yaml)")
    c.add_argument("--yes", action="store_true", help="delete (without it: only list)")
    cli_serve.add_parser(sub, **fmt)
    return p


COMMANDS = {"status": status, "generate": cli_generate.run, "score": cli_score.run,
            "models": list_models, "gc": gc, "serve": cli_serve.run}


def main(argv=None):
    args = parser().parse_args(argv)
    if args.command == "gc" and not args.config:
        args.config = ["pipeline.yaml"]
    try:
        return COMMANDS[args.command](args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:      # `generate ... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
