"""`python -m pipeline score FILE|-`: nats/char, bits/char and a 95% interval for any UTF-8 text.

The model is picked as `generate` picks it (the config's trained model, else the newest;
`--train PREFIX`, `--checkpoint PATH`). The text is streamed (stages/score.py) and scored with
the config's evaluate.lanes, evaluate.burn_in, evaluate.max_chars (the block), block_chars and
resamples, so scoring the validation split's text (after the last burn_in characters of the
training text, `--context-file`) gives the report's static figure. `--dynamic` scores it by
dynamic evaluation, one stream in document order, with the config's evaluate.dynamic_* settings
(not tuned: there is no second pass over a stream), the gradient statistics taken from the
model's training text. `--per-char` streams one JSON line per character before the summary.
"""
import json
import math
import sys
from pathlib import Path

from model import load_model
from model.dynamic import DynamicSettings, DynamicStream
from stages.dynamic_eval import STAT_SEGMENTS, statistics
from stages.errors import UserError
from stages.heldout_scope import fitting_text
from stages.score import DynamicBlocks, NothingToScore, StaticBlocks, Unknowns, score_stream
from stages.text import decode_utf8, file_chunks
from stages.tokens import open_tokens
from stages.vocab import Vocab

from .config import load_config
from .cli_models import add_model_arguments, choose
from .runs import upstream
from .store import local_copy


def add_parser(sub, **kw):
    s = sub.add_parser("score", help="held-out loss of any UTF-8 text under a trained model", **kw,
                       description="Score a text: nats/char, bits/char and a 95% interval (block "
                                   "bootstrap), under the config's trained model or another one.")
    s.add_argument("file", metavar="FILE", help="a UTF-8 text file; - for standard input")
    s.add_argument("--config", default="pipeline.yaml", help="config whose model and evaluate.* "
                   "settings (lanes, burn_in, max_chars, block_chars, resamples, dynamic_*) to use")
    add_model_arguments(s)
    s.add_argument("--context-file", metavar="PATH", help="text read before FILE and not scored "
                   "(the lanes read at most evaluate.burn_in characters of it)")
    s.add_argument("--unknown", choices=["error", "skip"], default="error",
                   help="characters outside the vocabulary: refuse, or drop them (counted either way)")
    s.add_argument("--dynamic", action="store_true", help="score by dynamic evaluation (the model "
                   "keeps learning from the text it has scored); settings: evaluate.dynamic_*")
    s.add_argument("--lanes", type=int, help="parallel lanes of static scoring (default: evaluate.lanes); more is "
                   "faster on long texts")
    s.add_argument("--format", choices=["text", "json"], default="text", help="text: three lines "
                   "for people; json: one line")
    s.add_argument("--per-char", action="store_true", help="first, one JSON line per character as "
                   "it is scored: {\"position\", \"char\", \"nats\"} (nats null: not scored)")
    return s


def _open(path):
    if path == "-":
        return sys.stdin.buffer, "standard input"
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{path} is a folder; give a text file, or - for standard input")
    try:
        return open(p, "rb"), str(path)
    except FileNotFoundError:
        raise UserError(f"{path} does not exist; give an existing text file, or - for standard "
                        "input") from None
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror}); give a readable text file") from None


def _decoded(fh, name):
    """The text of `fh`, a piece at a time, decoded as Download decodes a corpus file."""
    return decode_utf8(file_chunks(fh), name, fix="score a UTF-8 text file")


def _context(args, vocab):
    if not args.context_file:
        return None
    fh, name = _open(args.context_file)
    with fh:
        text = "".join(_decoded(fh, name))
    return Unknowns(vocab, args.unknown, name).encode(text)


def training_stream(ckpt, vocab):
    """The training split of the run `ckpt` belongs to (for --dynamic's gradient statistics)."""
    folder = Path(ckpt).parent
    shards = upstream(folder, "EncodeShards")   # on S3: found and downloaded through the store
    try:
        return open_tokens(local_copy(shards), "train", expect_vocab_fingerprint=vocab.fingerprint)
    except (OSError, ValueError, KeyError, TypeError, UserError):
        raise UserError(f"--dynamic needs the training text of {folder} for its gradient "
                        "statistics and its EncodeShards folder is gone; rerun the pipeline for "
                        "that config, or score without --dynamic") from None


def _dynamic_stream(net, ckpt, vocab, cfg):
    e = cfg.evaluate
    train, _ = fitting_text(training_stream(ckpt, vocab), e.dynamic_segment * STAT_SEGMENTS + 1)
    settings = DynamicSettings(e.dynamic_rate, e.dynamic_decay, e.dynamic_segment)
    return DynamicStream(net, statistics(net, train, e), settings), (
        f"dynamic evaluation, one stream in document order after {e.burn_in} unscored characters: "
        f"rate {e.dynamic_rate:g}, decay {e.dynamic_decay:g}, {e.dynamic_segment}-character segments")


def _per_char_writer(vocab, out):
    def write(ids, nll, offset):
        out.write("".join(json.dumps({"position": offset + i, "char": vocab.chars[c],
                                      "nats": None if math.isnan(v) else v}, ensure_ascii=False) + "\n"
                          for i, (c, v) in enumerate(zip(ids.tolist(), nll.tolist()))))
        out.flush()
    return write


def run(args, out=None, err=None):
    out, err = out or sys.stdout, err or sys.stderr
    cfg = load_config(args.config)
    e = cfg.evaluate
    lanes = args.lanes or e.lanes
    if lanes < 1:
        raise UserError(f"--lanes must be >= 1, got {lanes}")
    ckpt, vocab_path = choose(args.config, args.checkpoint, args.train,
                              note=lambda msg: print(msg, file=err))
    net, _ = load_model(ckpt)
    vocab = Vocab.load(vocab_path)
    context = _context(args, vocab)
    if args.dynamic:
        stream, protocol = _dynamic_stream(net, ckpt, vocab, cfg)
        scorer = DynamicBlocks(stream, context, e.burn_in)
    else:
        protocol = f"static: {lanes} lanes, each after {e.burn_in} unscored characters"
        scorer = StaticBlocks(net, context, lanes, e.burn_in, e.max_chars)
    fh, name = _open(args.file)
    unknown = Unknowns(vocab, args.unknown, name)
    per_char = _per_char_writer(vocab, out) if args.per_char else None
    with fh:
        pieces = (unknown.encode(text) for text in _decoded(fh, name))
        try:
            res = score_stream(scorer, pieces, e.block_chars, e.resamples, per_char)
        except NothingToScore:
            if unknown.seen == 0:
                raise UserError(f"{name} is empty: there is nothing to score; give a text "
                                "file with at least two characters") from None
            raise
    res.update({"file": name, "checkpoint": str(ckpt), "protocol": protocol,
                "unknown_chars": unknown.count, "unknown_distinct": sorted(unknown.distinct),
                "bits_ci95": [x / math.log(2) for x in res["ci95"]] if res["ci95"] else None})
    out.write(json.dumps(res, ensure_ascii=False) + "\n" if args.format == "json" else _text(res))
    return 0


def _text(r):
    ci, bci = r["ci95"], r["bits_ci95"]
    span = lambda c, f: f"95% interval {c[0]:{f}} – {c[1]:{f}}" if c else "no interval (one block)"
    skipped = (f", {r['unknown_chars']:,} outside the vocabulary skipped "
               f"({''.join(r['unknown_distinct'])!r})" if r["unknown_chars"] else "")
    return (f"{r['file']}: {r['chars']:,} characters scored ({r['chars_unscored']:,} read as "
            f"context only{skipped}); {r['protocol']}\n"
            f"nats/char  {r['nats_per_char']:.4f}  {span(ci, '.4f')}\n"
            f"bits/char  {r['bits_per_char']:.4f}  {span(bci, '.4f')}\n")

