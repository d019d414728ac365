"""`python -m pipeline generate`: options, reading the prime, writing texts as they are produced.

Text format: each sample is the prime followed by its continuation and a blank line, written
character by character as it is produced (sample 1 live, the others as soon as it ends).
JSON format: one line per sample, {"text", "nats", "nats_per_char"}: the continuation and its
negative log-likelihood given the prime under the model (temperature 1), so that outputs of
different strategies and settings can be compared.
"""
import json
import sys
from dataclasses import fields
from pathlib import Path

from model.checkpoint import load_model
from stages.errors import UserError
from stages.generate import GenerateSettings, generate_stream, nats_of
from stages.sample import encode_prime
from stages.vocab import Vocab

from .cli_models import add_model_arguments, choose

D = GenerateSettings()


def add_parser(sub, **kw):
    g = sub.add_parser("generate", help="generate text from a trained model", **kw,
                       description="Generate text from a trained model: the config's own, or "
                                   "another one chosen with --checkpoint / --train.")
    g.add_argument("--config", default="pipeline.yaml", help="config whose trained model to use")
    add_model_arguments(g)
    p = g.add_argument_group("prime: the text to continue")
    p.add_argument("--prime", help="the text itself (default: a newline)")
    p.add_argument("--prime-file", metavar="PATH", help="read it from a file; - for standard input")
    p.add_argument("--unknown", choices=["error", "skip"], default="error",
                   help="prime characters not in the vocabulary: refuse, or drop them")
    o = g.add_argument_group("output")
    o.add_argument("--length", type=int, default=D.length, help="characters to generate per text")
    o.add_argument("--num", type=int, default=D.num, help="number of texts (beam: the n best)")
    o.add_argument("--stop", default=D.stop, help="end a text just after this text appears "
                   "(beam: such hypotheses finish early); empty: always --length characters")
    o.add_argument("--format", choices=["text", "json"], default="text", help="text: prime and "
                   "continuation, streamed; json: a line per text with its nats and nats_per_char")
    s = g.add_argument_group("strategy")
    s.add_argument("--strategy", default=D.strategy, help="sample, greedy, redraw_once or beam "
                   "(the most likely continuation); plug-ins add more")
    s.add_argument("--temperature", type=float, default=D.temperature,
                   help="sampling: divides the logits; lower is more conservative")
    s.add_argument("--top-k", type=int, default=D.top_k, help="sampling: keep the k most likely "
                   "characters (0 = all)")
    s.add_argument("--top-p", type=float, default=D.top_p, help="sampling: keep the smallest set "
                   "of characters holding this probability (1 = all)")
    s.add_argument("--seed", type=int, default=D.seed, help="sampling: random seed (same seed, "
                   "same text)")
    s.add_argument("--beam-width", type=int, default=D.beam_width,
                   help="beam: hypotheses kept at each step")
    s.add_argument("--length-penalty", type=float, default=D.length_penalty, help="beam: rank by "
                   "log-likelihood / length**this (1 = per character, 0 = total); matters with --stop")
    s.add_argument("--no-repeat-ngram", type=int, default=D.no_repeat_ngram, help="beam: never "
                   "repeat a character n-gram of this size (0 = off; try 10-20 against loops)")
    return g


def read_prime(args, stdin=None):
    if args.prime is not None and args.prime_file is not None:
        raise UserError("give either --prime or --prime-file, not both")
    if args.prime_file is None:
        return "\n" if args.prime is None else args.prime
    if args.prime_file == "-":
        return (stdin or sys.stdin).read()
    try:
        return Path(args.prime_file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"prime file {args.prime_file} does not exist; give an existing file, "
                        "or - to read standard input") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read prime file {args.prime_file} as UTF-8 text ({e}); give a "
                        "UTF-8 text file") from None


def write_texts(pieces, prime, out):
    """Text format: write each piece at once, so the text appears as it is produced."""
    current = None
    for index, piece in pieces:
        if index != current:
            out.write(("\n\n" if current is not None else "") + prime)
            current = index
        out.write(piece)
        out.flush()
    if current is not None:
        out.write("\n\n")
        out.flush()


def write_json(pieces, scorer, out):
    """JSON format: one line per text once it is complete."""
    texts = {}
    for index, piece in pieces:
        texts[index] = texts.get(index, "") + piece
    for index in sorted(texts):
        nats, per_char = scorer(texts[index])
        out.write(json.dumps({"text": texts[index], "nats": nats, "nats_per_char": per_char},
                             ensure_ascii=False) + "\n")
        out.flush()


def settings(args):
    return GenerateSettings(**{f.name: getattr(args, f.name) for f in fields(GenerateSettings)})


def run(args, out=None, stdin=None, err=None):
    out, err = out or sys.stdout, err or sys.stderr
    prime = read_prime(args, stdin)
    ckpt, vocab_path = choose(args.config, args.checkpoint, args.train,
                              note=lambda msg: print(msg, file=err))
    net, _ = load_model(ckpt)
    vocab = Vocab.load(vocab_path)
    prime_ids = encode_prime(vocab, prime, args.unknown, "the prime", "pass --unknown skip")
    s = settings(args)
    if s.stop:
        try:
            vocab.encode(s.stop)
        except UserError as e:
            raise UserError(f"--stop: {e}") from None
    try:
        pieces = generate_stream(net, vocab, prime_ids, s)
    except ValueError as e:
        raise UserError(f"generate: {e}") from None
    if args.format == "json":
        write_json(pieces, lambda text: nats_of(net, prime_ids, vocab.encode(text)), out)
    else:
        write_texts(pieces, vocab.decode(prime_ids), out)
    return 0

