"""Sample stage: generate texts from a trained model with the configured strategy."""
from importlib import metadata

from model.sampling import STRATEGIES, generate

from .atomic import atomic_write_json, atomic_write_text
from .errors import UserError

ENTRY_POINT_GROUP = "shakespeare_cifg.sampling"


def strategies():
    """Built-in strategies plus those other packages register under the entry-point group.

    A plug-in is a function (p, rng) -> ids that picks one index per row of the (N, K)
    filtered posteriors p.
    """
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in STRATEGIES:
            STRATEGIES[ep.name] = ep.load()
    return STRATEGIES


def encode_prime(vocab, prime, unknown, name="sample.prime", skip="set vocab.unknown: skip"):
    """Ids of the prime; UserError naming `name` (and `skip`) when unknown or none is known."""
    try:
        ids = vocab.encode(prime, unknown=unknown)
    except UserError as e:
        raise UserError(f"{name}: {e} (or {skip})") from None
    if len(ids) == 0:
        raise UserError(f"{name} {prime!r} has no character of the vocabulary; give text from "
                        "the corpus (e.g. a speaker name)")
    return ids


def generate_texts(net, vocab, prime, length, num, temperature, top_k, top_p, strategy, seed,
                   unknown="error"):
    """`num` texts of `length` characters continuing `prime` (the prime is not repeated)."""
    if strategy not in strategies():
        raise UserError(f"sample.strategy {strategy!r} is unknown; choose one of {sorted(STRATEGIES)}")
    try:
        ids = generate(net, encode_prime(vocab, prime, unknown), length, num=num, temperature=temperature,
                       top_k=top_k, top_p=top_p, strategy=strategy, seed=seed)
    except ValueError as e:
        raise UserError(f"sampling: {e}") from None
    return [vocab.decode(row) for row in ids]


def sample_texts(net, vocab, cfg, unknown, folder):
    """Write samples.json and samples.txt into `folder`; returns a summary."""
    texts = generate_texts(net, vocab, cfg.prime, cfg.length, cfg.num_samples, cfg.temperature,
                           cfg.top_k, cfg.top_p, cfg.strategy, cfg.seed, unknown)
    settings = {"prime": cfg.prime, "temperature": cfg.temperature, "top_k": cfg.top_k,
                "top_p": cfg.top_p, "strategy": cfg.strategy, "seed": cfg.seed}
    atomic_write_json(folder / "samples.json", {"settings": settings, "samples": texts})
    atomic_write_text(folder / "samples.txt",
                      "".join(f"=== sample {i + 1} ===\n{cfg.prime}{t}\n\n" for i, t in enumerate(texts)))
    return {"num_samples": len(texts), "length": cfg.length}
