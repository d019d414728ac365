"""What every stage shares: config parameter, fingerprint, output folder, atomic completion.

A stage's output folder is `<artifacts_dir>/<Stage>/<fingerprint>/`. The fingerprint hashes
the stage name, its code VERSION, the config keys it reads (canonical JSON), the fingerprints
of its inputs and, for Download, the identity of the corpus content. Luigi only asks whether
a task's output exists and never looks upstream of a complete task; because every upstream
change moves the downstream folders, "exists" here means "up to date".

The folder counts as done only when `_COMPLETE` exists; it is written last, atomically, after
`meta.json`. A crash at any moment leaves a folder without it, which the next run redoes
(Train resumes from its checkpoints). An exclusive lock per folder keeps two processes that
start the same stage at once from writing it together: the second waits, then finds it done.
Where the folders live (a local folder or s3://) and what the lock is: pipeline/store.py.
"""
import functools
import hashlib
import json
import logging
import re
import time
from dataclasses import asdict

import luigi

from stages import persist
from stages.atomic import atomic_write_json
from stages.errors import UserError

from .config import load_config
from .store import open_store
log = logging.getLogger("pipeline")


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=list)


def config_slice(cfg, keys):
    """{"train.steps": 100, ...} for dotted keys; a bare section name takes all its keys."""
    out = {}
    for key in keys:
        section, _, name = key.partition(".")
        value = getattr(cfg, section)
        if name:
            out[key] = getattr(value, name)
        elif hasattr(value, "__dataclass_fields__"):
            out.update({f"{section}.{k}": v for k, v in asdict(value).items()})
        else:
            out[key] = value
    return json.loads(canonical(out))


class Stage(luigi.Task):
    """Base of the six stages. Subclasses set KEYS (config keys read) and VERSION."""
    config = luigi.Parameter(default="pipeline.yaml", description="path of the YAML config")
    KEYS = ()
    VOLATILE = ()     # keys read but not affecting the outputs (logging cadence...)
    VERSION = "1"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        open_store(load_config(self.config).artifacts_dir)   # a config or store mistake stops
        # the run here, before any work

    @property
    def cfg(self):
        return load_config(self.config)

    def upstream(self):
        """Input stages, as a list: what requires() declares."""
        return luigi.task.flatten(self.requires())

    def identity(self):
        """Extra content identity folded into the fingerprint (Download: the corpus)."""
        return None

    def slice(self):
        return {k: v for k, v in config_slice(self.cfg, self.KEYS).items() if k not in self.VOLATILE}

    def fingerprint(self):
        return _fingerprint(self.__class__.__name__, self.VERSION, canonical(self.slice()),
                            tuple(t.fingerprint() for t in self.upstream()), self.identity())

    @property
    def store(self):
        return open_store(self.cfg.artifacts_dir)

    def folder(self):
        return self.store.folder(self.__class__.__name__, self.fingerprint()[:16])

    def marker(self):
        return self.store.marker_target(self.folder())

    def input_folder(self, stage_cls):
        """Output folder of the (direct or indirect) upstream stage of that class."""
        for t in self.upstream():
            if isinstance(t, stage_cls):
                return self.store.fetch(t.folder())
        for t in self.upstream():
            found = t.input_folder(stage_cls)
            if found:
                return found
        return None

    def doing(self, activity, bounding_key=None, fraction=None):
        """Record what the stage is doing (named if it runs out of memory) and report progress."""
        self._activity = (activity, bounding_key)
        if fraction is not None:
            self.report_progress(fraction, f"{self.__class__.__name__}: {activity}")

    def report_progress(self, fraction, message):
        """Percentage and status message for the scheduler (luigid's task page)."""
        if callable(self.set_progress_percentage):   # a Luigi worker runs the task: not run() called directly
            self.set_progress_percentage(round(100 * fraction, 1))
            self.set_status_message(message)

    def meta(self, result, seconds):
        return {"stage": self.__class__.__name__, "fingerprint": self.fingerprint(),
                "version": self.VERSION, "config": self.slice(), "config_path": self.cfg.path,
                "inputs": {t.__class__.__name__: t.fingerprint() for t in self.upstream()},
                "identity": self.identity(), "finished": time.time(), "seconds": round(seconds, 3),
                "result": result}


@functools.lru_cache(maxsize=256)
def _fingerprint(name, version, slice_json, inputs, identity):
    blob = canonical({"stage": name, "version": version, "config": json.loads(slice_json),
                      "inputs": list(inputs), "identity": identity})
    return hashlib.sha256(blob.encode()).hexdigest()


def produces(resumable=False):
    """Decorator for Stage.run(self, folder): lock, skip if done, write meta and marker last.

    A non-resumable stage starts from an empty folder; a resumable one (Train) keeps what an
    interrupted run left (checkpoints).
    """
    def wrap(body):
        @functools.wraps(body)
        def run(self):
            folder, store = self.folder(), self.store
            with store.lock(folder):
                if store.is_complete(folder):
                    log.info("%s already done by another run: %s", self.__class__.__name__,
                             store.uri(folder))
                    return
                store.begin(folder, resumable)
                t0 = time.perf_counter()
                try:
                    with persist.flushing(folder, store.flush):
                        result = body(self, folder)
                except MemoryError:
                    raise _out_of_memory(self) from None
                atomic_write_json(folder / "meta.json", self.meta(result, time.perf_counter() - t0))
                store.complete(folder, self.fingerprint() + "\n")
            log.info("%s done: %s", self.__class__.__name__, store.uri(folder))
        return run
    return wrap


def stages_done(output):
    """The stages a Luigi run's output says it ran (the "<Stage> done: <folder>" lines), in order."""
    return re.findall(r"^\S+ (\w+) done: ", output, flags=re.M)


def _out_of_memory(stage):
    """One line naming the stage, what it was doing and the key that bounds its memory."""
    activity, key = getattr(stage, "_activity", ("running", None))
    fix = f"lower {key} in the config, or free memory" if key else "free memory"
    return UserError(f"{stage.__class__.__name__} ran out of memory while {activity}: {fix}, then rerun "
                     "(nothing was marked complete)")
