"""How a Train run begins: resume its folder, continue a finished run, or warm- or cold-start.

With data-parallel ranks, rank 0 alone reads the folder and decides; the others then load the
same checkpoint, or copy rank 0's warm-started weights, so every rank starts identical.
"""
import json
from pathlib import Path

from model import CheckpointError, load_checkpoint

from .atomic import atomic_write_json

INIT_RECORD = "init_from.json"   # what a warm-started run started from


def checkpoints(out_dir):
    """Checkpoint files, newest first."""
    return sorted(Path(out_dir, "checkpoints").glob("step-*.ckpt"), reverse=True)


def resume(trainer, out_dir, log):
    """Load the newest checkpoint that verifies; returns its path or None."""
    for path in checkpoints(out_dir):
        try:
            trainer.load_state_dict(*load_checkpoint(path))
        except (CheckpointError, KeyError, ValueError) as e:
            log(f"skipping damaged checkpoint {path.name}: {e}")
            continue
        log(f"resumed from {path.name} (step {trainer.step})")
        return path
    return None


def _start_here(trainer, out_dir, log, continue_from, init):
    """Resume this folder's run, else continue a finished one, else warm- or cold-start.

    Returns (checkpoint resumed from or None, warm-start record or None).
    """
    resumed = resume(trainer, out_dir, log)
    init_record, started_from = out_dir / INIT_RECORD, None
    if resumed is None and continue_from is not None:
        trainer.load_state_dict(*load_checkpoint(continue_from))
        log(f"continuing a finished run from {continue_from} (step {trainer.step})")
    elif resumed is None:
        started_from = init(trainer.net) if init is not None else None
        if started_from is not None:
            atomic_write_json(init_record, started_from)
        else:
            init_record.unlink(missing_ok=True)
    elif init_record.exists():
        started_from = json.loads(init_record.read_text())
    return resumed, started_from



def start(trainer, out_dir, log, continue_from, init):
    """Begin the run on every rank; returns (checkpoint resumed from or None, warm-start record
    or None), as rank 0 found them (None, None on the other ranks)."""
    ranks = trainer.ranks
    plan = None
    if ranks.root:
        resumed, started_from = _start_here(trainer, out_dir, log, continue_from, init)
        loaded = resumed or continue_from
        plan = {"checkpoint": str(loaded) if loaded else None,
                "params": trainer.net.flat if started_from is not None and not loaded else None}
    if ranks.size == 1:
        return resumed, started_from
    plan = ranks.share(plan)
    if ranks.root:
        return resumed, started_from
    if plan["checkpoint"]:
        trainer.load_state_dict(*load_checkpoint(plan["checkpoint"]))
    elif plan["params"] is not None:
        trainer.net.flat[...] = plan["params"]
    return None, None
