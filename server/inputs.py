"""Request bodies checked field by field: every mistake is one line naming the field and the fix.

A body is a JSON object; unknown fields, wrong types (a boolean is not a number, 5.0 is not an
integer), values out of range and characters outside the vocabulary are `BadInput` (HTTP 400).
NaN and Infinity are refused by the parser itself, since JSON has neither; so is nesting deeper
than the parser's recursion limit.
"""
import json
import math
from dataclasses import dataclass

from stages.generate import GenerateSettings


class BadInput(ValueError):
    """A client mistake: answered with `status` and the one-line message."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    max_length: int = 2000          # characters per generated text
    max_concurrent: int = 32        # generations and scorings running at once
    max_body: int = 65536           # bytes of a request body
    max_num: int = 16               # texts per request
    max_beam_width: int = 16
    max_prime_rows: int = 16384     # prime characters x num: the prime's one forward pass holds
                                    # ~10 KB per row at 2x384 (it is run whole, as the CLI runs it)


def _refuse_constant(name):
    raise BadInput(f"the body has {name}, which JSON does not allow; send a finite number")


def parse_body(raw):
    """The JSON object in `raw` (bytes)."""
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise BadInput("the body is not UTF-8; send UTF-8 encoded JSON") from None
    except json.JSONDecodeError as e:
        raise BadInput(f"the body is not valid JSON ({e.msg} at line {e.lineno} column "
                       f"{e.colno}); send a JSON object") from None
    except RecursionError:   # the parser's own depth limit (about 1,000 nested [ or {)
        raise BadInput("the body's JSON is nested too deeply; send a JSON object of plain "
                       "fields") from None
    if not isinstance(body, dict):
        raise BadInput(f"the body must be a JSON object, not {type(body).__name__}; send {{...}}")
    return body


def _integer(body, name, low, high, default, why=""):
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{name} must be an integer, got {json.dumps(value)}")
    if not low <= value <= high:
        raise BadInput(f"{name} must be between {low} and {high}{why}, got {value}")
    return value


def _number(body, name, default, ok, rule):
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(f"{name} must be a number, got {json.dumps(value)}")
    if not (math.isfinite(value) and ok(value)):
        raise BadInput(f"{name} must be {rule}, got {value}")
    return float(value)


def _text(body, name, default):
    value = body.get(name, default)
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a string, got {json.dumps(value)}")
    return value


def _known(body, fields):
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise BadInput(f"unknown field {unknown[0]!r}; the fields are {', '.join(fields)}")


def encode(vocab, name, text, unknown="error"):
    """Ids of `text`; characters outside the vocabulary are a 400 naming them."""
    bad = sorted({ch for ch in text if ch not in vocab.stoi})
    if bad and unknown == "error":
        shown = ", ".join(repr(ch) for ch in bad[:10])
        fix = ' (or send "unknown": "skip" to drop them)' if name == "prime" else ""
        raise BadInput(f"{name} has characters the model does not know: {shown}; remove "
                       f"them{fix}")
    return vocab.encode(text, unknown="skip")


GENERATE_FIELDS = ("prime", "unknown", *[f for f in GenerateSettings.__dataclass_fields__])
D = GenerateSettings()


def generate_request(body, vocab, limits, strategies):
    """(prime ids, GenerateSettings) of a /api/generate body; `strategies`: the known names."""
    _known(body, GENERATE_FIELDS)
    unknown = _text(body, "unknown", "error")
    if unknown not in ("error", "skip"):
        raise BadInput(f"unknown must be \"error\" or \"skip\", got {json.dumps(unknown)}")
    prime = _text(body, "prime", "\n")
    prime_ids = encode(vocab, "prime", prime, unknown)
    if len(prime_ids) == 0:
        raise BadInput("prime has no character the model knows; give text from the corpus "
                       "(e.g. a speaker name)")
    strategy = _text(body, "strategy", D.strategy)
    if strategy not in strategies:
        raise BadInput(f"strategy {strategy!r} is unknown; choose one of {strategies}")
    width = _integer(body, "beam_width", 1, limits.max_beam_width, D.beam_width)
    most = min(width, limits.max_num) if strategy == "beam" else limits.max_num
    s = GenerateSettings(
        length=_integer(body, "length", 0, limits.max_length, min(D.length, limits.max_length),
                        " (the server's --max-length)"),
        num=_integer(body, "num", 1, most, D.num,
                     " (beam: at most beam_width)" if strategy == "beam" else ""),
        strategy=strategy,
        temperature=_number(body, "temperature", D.temperature, lambda v: v > 0, "> 0"),
        top_k=_integer(body, "top_k", 0, vocab.size, D.top_k, " (0 = all)"),
        top_p=_number(body, "top_p", D.top_p, lambda v: 0 < v <= 1, "in (0, 1] (1 = all)"),
        seed=_integer(body, "seed", 0, 2 ** 63 - 1, D.seed),
        beam_width=width,
        length_penalty=_number(body, "length_penalty", D.length_penalty, lambda v: v >= 0, ">= 0"),
        no_repeat_ngram=_integer(body, "no_repeat_ngram", 0, 1000, D.no_repeat_ngram),
        stop=_text(body, "stop", D.stop))
    rows = len(prime_ids) * (s.beam_width + 1 if strategy == "beam" else s.num)
    if rows > limits.max_prime_rows:
        raise BadInput(f"the prime ({len(prime_ids)} characters) times the streams it runs in "
                       f"({rows // len(prime_ids)}) is over {limits.max_prime_rows}; send a "
                       "shorter prime or fewer texts")
    if s.no_repeat_ngram == 1:
        raise BadInput("no_repeat_ngram must be 0 (off) or at least 2, got 1")
    encode(vocab, "stop", s.stop)
    return prime_ids, s


def score_request(body, vocab):
    """(context ids, text ids) of a /api/score body: `text` scored after the optional `prime`."""
    _known(body, ("text", "prime"))
    if "text" not in body:
        raise BadInput('the field "text" is missing; send {"text": "..."}')
    text = _text(body, "text", "")
    if not text:
        raise BadInput("text is empty; send at least one character")
    return encode(vocab, "prime", _text(body, "prime", "")), encode(vocab, "text", text)
