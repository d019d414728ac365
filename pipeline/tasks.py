"""The six Luigi stages. Each: requires, output, run — run reads inputs, calls one function."""
import json
import logging
import time
from functools import lru_cache

from stages.errors import UserError
from stages.evaluate import evaluate_report
from stages.progress import Progress
from stages.sample import sample_texts
from stages.shards import encode_shards
from stages.sources import corpus_identity, fetch_corpus, match_files
from stages.text import sha256_file
from stages.tokens import open_tokens
from stages.train import load_trained, run_training
from stages.vocab import Vocab, build_vocab, count_chars

from .base import Stage, canonical, produces
from .continuation import previous_run_checkpoint
from .init_from import initializer
from .runs import read_meta
from .ranks import launch as launch_ranks

log = logging.getLogger("pipeline")


@lru_cache(maxsize=32)
def _identity(sources_json, stat_signature):
    return corpus_identity(json.loads(sources_json))


def _stat_signature(sources):
    """Sizes and mtimes of local source files: the identity is recomputed when they change."""
    sig = []
    for s in sources:
        if s["kind"] == "file":
            try:
                sig += [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in match_files(s["path"])]
            except UserError:
                sig.append((s["path"], None))
    return tuple(sig)


def _verified_corpus(task):
    """Download's corpus.txt, checked against the sha256 Download recorded for it."""
    folder = task.input_folder(Download)
    corpus, meta = folder / "corpus.txt", read_meta(folder) or {}
    try:
        ok = sha256_file(corpus) == meta.get("result", {}).get("sha256")
    except OSError:
        ok = False
    if not ok:
        raise UserError(f"corpus {corpus} is missing or damaged (it is not the text Download wrote): "
                        f"delete the folder {folder} and rerun")
    return corpus


class Download(Stage):
    """Gather the configured sources into one UTF-8 corpus file."""
    KEYS = ("corpus.sources",)
    VERSION = "1"

    def identity(self):
        sources = self.cfg.corpus.sources
        return _identity(canonical(sources), _stat_signature(sources))

    def output(self):
        return self.marker()

    @produces()
    def run(self, folder):
        c = self.cfg.corpus
        return fetch_corpus(list(c.sources), folder / "corpus.txt", timeout=c.timeout_s, retries=c.retries)


class BuildVocab(Stage):
    """Character vocabulary of the whole corpus, in codepoint order."""
    VERSION = "1"

    def requires(self):
        return [Download(config=self.config)]

    def output(self):
        return self.marker()

    @produces()
    def run(self, folder):
        corpus = _verified_corpus(self)
        self.doing("counting characters")   # streams: no key bounds it
        progress = Progress("BuildVocab", corpus.stat().st_size, "bytes", log.info, self.report_progress)
        vocab = build_vocab(count_chars(corpus, progress=progress))
        vocab.save(folder / "vocab.json")
        return {"size": vocab.size, "fingerprint": vocab.fingerprint}


class EncodeShards(Stage):
    """Parquet shards of the train, validation and test token streams."""
    KEYS = ("shards",)
    VERSION = "2"   # 2: tokens as list<uint8>/list<uint16> (was packed bytes), plus <split>.tokens

    def requires(self):
        return [BuildVocab(config=self.config)]

    def output(self):
        return self.marker()

    @produces()
    def run(self, folder):
        s = self.cfg.shards
        vocab = Vocab.load(self.input_folder(BuildVocab) / "vocab.json")
        corpus = _verified_corpus(self)
        # Two shards of ids (65,536 rows of seq_len) are held at a time.
        self.doing("encoding the shards", "shards.seq_len")
        progress = Progress("EncodeShards", sum(vocab.counts), "chars", log.info, self.report_progress)
        return encode_shards(corpus, vocab, folder, seq_len=s.seq_len, val_fraction=s.val_fraction,
                             test_fraction=s.test_fraction,
                             rows_per_group=s.rows_per_group, total_chars=sum(vocab.counts) or None,
                             progress=progress)


class Train(Stage):
    """Train the CIFG-LSTM; resumes from its checkpoints after a crash or interruption."""
    KEYS = ("model", "train", "shards.seq_len")
    # Where the run computes is not what it computes: N ranks follow the one-process trajectory
    # up to float summation order, so train.processes and train.hosts leave the folder alone.
    VOLATILE = ("train.checkpoint_every", "train.log_every", "train.sample_every",
                "train.processes", "train.hosts", "train.stall_timeout_s")
    VERSION = "2"   # 2: embedding-style init of character rows, input-gate bias +1
    resources = {"train": 1}   # luigi.cfg [resources] caps concurrent trainings per scheduler

    def requires(self):
        return [EncodeShards(config=self.config)]

    def slice(self):
        # train.init_from joins the fingerprint only when set: runs made before the key existed
        # (or with it off) keep their folders. Its value, not the run it resolves to, is hashed.
        out = super().slice()
        if not out.get("train.init_from"):
            out.pop("train.init_from", None)
        # train.threads was removed at 1, the value every run since has used; hashing it as
        # before keeps the folders of runs made while it existed.
        out["train.threads"] = 1
        return out

    def output(self):
        return self.marker()

    @produces(resumable=True)
    def run(self, folder):
        if self.cfg.train.processes > 1:
            return launch_ranks(self, folder)   # pipeline/ranks.py: N ranks, each calls train()
        return self.train(folder)

    def train(self, folder, ranks=None, log=log.info, report=None):
        """Train into `folder` in this process (one data-parallel rank of several, with `ranks`)."""
        shards, vocab = self.input_folder(EncodeShards), Vocab.load(self.input_folder(BuildVocab) / "vocab.json")
        # The validation slice scored during training is held whole: train.eval_chars bounds it.
        self.doing("training and scoring the validation slice",
                   "train.eval_chars (0 = the whole split), train.batch_size or model.hidden_size")
        # Token files read a window at a time: Train's memory does not grow with the corpus.
        streams = [open_tokens(shards, split, expect_vocab_fingerprint=vocab.fingerprint)
                   for split in ("train", "val")]
        # Only rank 0 decides how the run begins (stages/train_start.py): the others would list,
        # and on S3 download, earlier runs only to ignore them.
        root = ranks is None or ranks.root
        return run_training(*streams, vocab, self.cfg.model, self.cfg.train, self.cfg.shards.seq_len,
                            folder, log=log, report=report or self.report_progress, ranks=ranks,
                            continue_from=previous_run_checkpoint(self) if root else None,
                            init=initializer(self, vocab) if root else None)


class Sample(Stage):
    """Generate sample texts from the best trained model."""
    KEYS = ("sample", "vocab.unknown")
    VERSION = "1"

    def requires(self):
        return [Train(config=self.config)]

    def output(self):
        return self.marker()

    @produces()
    def run(self, folder):
        vocab = Vocab.load(self.input_folder(BuildVocab) / "vocab.json")
        net, _ = load_trained(self.input_folder(Train))
        self.doing("sampling", "sample.num_samples")
        return sample_texts(net, vocab, self.cfg.sample, self.cfg.vocab.unknown, folder)


class Evaluate(Stage):
    """The quality report: held-out likelihood against baselines, sample metrics, pictures."""
    KEYS = ("evaluate",)
    VERSION = "3"   # 2: reference texts and comparison pool from separate halves; 3: intervals, bands

    def slice(self):
        # The adaptive rows' keys join the fingerprint only when their row is on: with both off
        # the report is what it was before the keys existed, and those folders stay valid.
        out = super().slice()
        for row, prefix in (("dynamic", "evaluate.dynamic_"), ("cache", "evaluate.cache_")):
            if not out.get(f"evaluate.{row}"):
                for key in [k for k in out if k == f"evaluate.{row}" or k.startswith(prefix)]:
                    out.pop(key)
        if out.get("evaluate.dynamic") and not out.get("evaluate.dynamic_tune"):
            out.pop("evaluate.dynamic_tune_chars", None)   # no tuning: unused
        return out

    def requires(self):
        return [Sample(config=self.config)]

    def output(self):
        return self.marker()

    @produces()
    def run(self, folder):
        self._t0 = time.perf_counter()
        result = evaluate_report(self._inputs(), self.cfg, folder, step=self._step)
        print(f"report: {folder / 'report.md'} and {folder / 'report.json'}")
        return result

    def _step(self, activity, key, fraction):
        # ETA from the share of the work each phase took in benchmarks/scale.py runs.
        elapsed = time.perf_counter() - self._t0
        eta = f"ETA {elapsed * (1 - fraction) / fraction:,.0f} s" if fraction > 0 else "ETA unknown"
        self.doing(activity, key)
        self.report_progress(fraction, f"Evaluate: {activity} ({fraction:.0%}, {eta})")
        log.info("Evaluate: %s (%.0f%% done, %.0f s so far, %s)", activity, 100 * fraction, elapsed, eta)

    def _inputs(self):
        names = (Download, BuildVocab, EncodeShards, Train, Sample)
        return {cls.__name__: self.input_folder(cls) for cls in names}
