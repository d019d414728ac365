"""Warm start: begin training from an earlier model's weights, across a grown vocabulary.

The earlier model and the new one must share the architecture (cell, hidden size, layers,
dtype); their vocabularies may differ. Character-indexed parameters are mapped through both
vocabularies by character:

    W0[:D]  one input row per character      (rows of known characters copied)
    Wy      one output column per character  (columns of known characters copied)
    by      one output bias per character    (entries of known characters copied)

Every other parameter (the recurrent rows W0[D:], deeper layers, gate biases) does not depend
on the vocabulary and is copied whole. Characters new to the corpus keep the fresh
initialisation the new network was built with; characters the new corpus no longer has are
dropped. Optimizer state is not part of this: a warm start begins with a fresh optimizer.
"""
import numpy as np

from .errors import UserError

ARCHITECTURE = ("H", "L", "cell", "dtype")
_NAMES = {"H": "hidden_size", "L": "num_layers", "cell": "cell", "dtype": "dtype"}


def _check(net, vocab, what):
    if net.D != vocab.size or net.K != vocab.size:
        raise UserError(f"the {what} model has {net.D} inputs and {net.K} outputs but its vocabulary "
                        f"has {vocab.size} characters: the vocabulary found for it does not belong "
                        "to it; point train.init_from at another run")


def warm_start(net, vocab, old_net, old_vocab):
    """Copy `old_net`'s parameters into `net` (in place), mapping characters by identity.

    Returns {"chars_added": [...], "chars_dropped": [...], "chars_kept": n} for the record.
    Raises UserError when the architectures differ or a vocabulary does not fit its model.
    """
    diff = [f"model.{_NAMES[a]} {getattr(old_net, a)} -> {getattr(net, a)}"
            for a in ARCHITECTURE if getattr(old_net, a) != getattr(net, a)]
    if diff:
        raise UserError("cannot warm-start from a model of another architecture ("
                        + ", ".join(map(str, diff)) + "); set train.init_from to a run with the "
                        "same model.* keys (regularisers and seed may differ), or to \"\" to start fresh")
    _check(net, vocab, "new")
    _check(old_net, old_vocab, "earlier")
    kept = [c for c in vocab.chars if c in old_vocab.stoi]
    new_ids = np.array([vocab.stoi[c] for c in kept], np.intp)
    old_ids = np.array([old_vocab.stoi[c] for c in kept], np.intp)
    new, old = net.params, old_net.params
    for name, arr in new.items():
        if name == "W0":
            arr[net.D:] = old[name][old_net.D:]              # recurrent rows: vocabulary-free
            arr[new_ids] = old[name][old_ids]                # input rows, by character
        elif name == "Wy":
            arr[:, new_ids] = old[name][:, old_ids]
        elif name == "by":
            arr[new_ids] = old[name][old_ids]
        else:
            arr[...] = old[name]
    return {"chars_added": [c for c in vocab.chars if c not in old_vocab.stoi],
            "chars_dropped": [c for c in old_vocab.chars if c not in vocab.stoi],
            "chars_kept": len(kept)}
