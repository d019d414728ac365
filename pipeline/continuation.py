"""Raising train.steps (or the time budget) continues a finished run instead of restarting.

A sibling Train folder qualifies when it is complete, was trained from the same inputs with the
same config except `train.steps` / `train.time_budget_s`, and stopped short of the new target.
The learning rate then follows the new, longer schedule from the step reached: with
decay "constant" that is exactly the run a fresh start would give; with a decaying schedule it
is a warm restart (the rate climbs back to where the longer schedule stands at that step).
"""
from stages.train import checkpoints

from .runs import complete_runs
from .store import local_copy

EXTENDABLE = ("train.steps", "train.time_budget_s")


def _comparable(meta_config):
    return {k: v for k, v in meta_config.items() if k not in EXTENDABLE}


def previous_run_checkpoint(task):
    """Newest checkpoint of the longest qualifying finished run, or None."""
    here = task.folder()
    target = task.slice()
    inputs = {t.__class__.__name__: t.fingerprint() for t in task.upstream()}
    budget = target["train.time_budget_s"]
    best = None
    for folder, meta in complete_runs(here.parent.parent):
        if folder == here or meta.get("inputs") != inputs or \
                _comparable(meta.get("config", {})) != _comparable(target):
            continue
        result = meta.get("result", {})
        steps, seconds = result.get("steps", 0), result.get("train_seconds", 0.0)
        short = steps < target["train.steps"] and (not budget or seconds < budget)
        if not short or (best is not None and steps <= best[0]):
            continue
        newest = checkpoints(local_copy(folder))[:1]   # on S3: downloaded only now
        if newest:
            best = (steps, newest[0])
    return best[1] if best else None
