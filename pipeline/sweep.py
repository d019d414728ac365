"""Sweep: the whole pipeline for every config listed in a file, scheduled as one graph.

    luigi --module pipeline Sweep --configs sweep.txt --workers 2 [--scheduler-host HOST]

`sweep.txt` lists config paths, one per line; `#` starts a comment, blank lines are skipped,
relative paths are relative to the list file's folder. Stages the configs share (the same
corpus, say) have the same output folder and run once. Trainings run side by side up to the
scheduler's `[resources] train` limit (Train declares `resources = {"train": 1}`).
"""
from pathlib import Path

import luigi

from stages.errors import UserError

from .config import load_config
from .tasks import Evaluate


def read_config_list(path):
    """Config paths listed in `path` (comments and blanks dropped, duplicates once, in order)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise UserError(f"cannot read the sweep list {path} ({e.strerror}); pass --configs FILE "
                        "listing one config path per line") from None
    configs = []
    for line in lines:
        entry = line.split("#", 1)[0].strip()
        if entry:
            p = Path(entry).expanduser()
            p = str(p if p.is_absolute() else path.parent / p)
            if p not in configs:
                configs.append(p)
    if not configs:
        raise UserError(f"the sweep list {path} names no config; put one config path per line")
    return configs


class Sweep(luigi.WrapperTask):
    """Evaluate for every config listed in `--configs FILE`."""
    configs = luigi.Parameter(description="text file listing config paths, one per line (# comments)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for config in read_config_list(self.configs):
            load_config(config)   # every config mistake stops the sweep before any work

    def requires(self):
        return [Evaluate(config=c) for c in read_config_list(self.configs)]
