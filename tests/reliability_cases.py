"""Faults and bad inputs the pipeline is tested against, as data: the tests and the docs use it.

Each case says what goes wrong (`fault`), the text the user then sees in the output (`sees`,
asserted verbatim by the tests), the exit status, and which stage folders stay complete
(`kept`, asserted too: every other stage has no `_COMPLETE`). `spec` holds the parameters the
parametrized tests in tests/test_faults_*.py read.

`docs/reliability.md` is generated from this file and tests/reliability_s3.py, and a test
checks it is up to date:

    python -m tests.reliability_doc > docs/reliability.md
"""
from dataclasses import dataclass, field

STAGES = ("Download", "BuildVocab", "EncodeShards", "Train", "Sample", "Evaluate")
UP_TO = {s: STAGES[:i + 1] for i, s in enumerate(STAGES)}


@dataclass(frozen=True)
class Case:
    id: str
    fault: str
    sees: str                 # substring of the output, checked by the test
    kept: tuple               # stages left complete after the failure (all others are not)
    note: str = ""            # what else is kept / how to recover, shown in the docs
    exit: str = "non-zero"
    spec: dict = field(default_factory=dict, compare=False)


def kill(id, fault, when, pattern, nth, task, kept, sees, note="", **spec):
    """SIGKILL of the pipeline at the nth rename onto `pattern` (see tests/killpoint.py)."""
    return Case(id, fault, sees, kept, note or "rerun the same command: it completes and gives the "
                "same bits as an uninterrupted run", exit="killed; rerun 0",
                spec={"when": when, "pattern": pattern, "nth": nth, "task": task, **spec})


T = "Train/*/"
# The smoke config trains 24 steps, checkpoints every 6 (newest two kept), evaluates every 12.
KILLS = [
    kill("kill-download-torn", "SIGKILL while Download writes corpus.txt (temp file half written)",
         "torn", "Download/*/corpus.txt", 1, "Train", (), "Download done:"),
    kill("kill-download-meta", "SIGKILL after Download wrote meta.json, before `_COMPLETE`",
         "after", "Download/*/meta.json", 1, "Train", (), "Download done:"),
    kill("kill-vocab-marker", "SIGKILL just before BuildVocab's `_COMPLETE` rename",
         "before", "BuildVocab/*/_COMPLETE", 1, "Train", ("Download",), "BuildVocab done:"),
    kill("kill-shards-mid", "SIGKILL after the train shard, before the validation shard",
         "after", "EncodeShards/*/train-00000.parquet", 1, "Train", UP_TO["BuildVocab"],
         "EncodeShards done:"),
    kill("kill-train-first-ckpt", "SIGKILL while writing the first checkpoint (torn temp file)",
         "torn", T + "checkpoints/step-00000006.ckpt", 1, "Train", UP_TO["EncodeShards"],
         "Train done:", "nothing to resume from: training restarts at step 0, same final bits"),
    kill("kill-train-ckpt-torn", "SIGKILL while writing a later checkpoint (torn temp file)",
         "torn", T + "checkpoints/step-00000012.ckpt", 1, "Train", UP_TO["EncodeShards"],
         "resumed from step-00000006.ckpt"),
    kill("kill-train-between", "SIGKILL between checkpoints (just after step 12's landed)",
         "after", T + "checkpoints/step-00000012.ckpt", 1, "Train", UP_TO["EncodeShards"],
         "resumed from step-00000012.ckpt"),
    kill("kill-train-best", "SIGKILL after best.ckpt was updated, before that step's checkpoint",
         "after", T + "best.ckpt", 1, "Train", UP_TO["EncodeShards"],
         "resumed from step-00000006.ckpt"),
    kill("kill-train-last-torn", "SIGKILL while writing last.ckpt (torn temp file)",
         "torn", T + "last.ckpt", 1, "Train", UP_TO["EncodeShards"],
         "resumed from step-00000024.ckpt"),
    kill("kill-train-marker", "SIGKILL after Train's meta.json, before `_COMPLETE`",
         "before", T + "_COMPLETE", 1, "Train", UP_TO["EncodeShards"],
         "resumed from step-00000024.ckpt"),
    kill("kill-sample-mid", "SIGKILL after samples.json, before samples.txt",
         "after", "Sample/*/samples.json", 1, "Sample", UP_TO["Train"], "Sample done:"),
    kill("kill-evaluate-mid", "SIGKILL after the first report picture, before report.json",
         "after", "Evaluate/*/learning_curve.png", 1, "Evaluate", UP_TO["Sample"], "Evaluate done:"),
]

# SIGKILL from outside at a moment found by polling: real timing, whatever the stage is doing.
ASYNC_KILLS = [
    Case("async-kill-download", "SIGKILL from outside while Download streams a 3 MB corpus "
         "(when its temp file appears)", "Download done:", (),
         "rerun completes; corpus.txt and the shards match the source", "killed; rerun 0",
         spec={"poll": "Download/*/.corpus.txt.*.tmp", "task": "EncodeShards", "big": True}),
    Case("async-kill-train", "SIGKILL from outside as soon as the Train folder appears",
         "Train done:", UP_TO["EncodeShards"], "rerun completes with the same bits",
         "killed; rerun 0", spec={"poll": "Train/*", "task": "Train"}),
    Case("async-kill-sample", "SIGKILL from outside as soon as the Sample folder appears",
         "Sample done:", UP_TO["Train"], "rerun completes with the same bits", "killed; rerun 0",
         spec={"poll": "Sample/*", "task": "Sample"}),
    Case("async-kill-evaluate", "SIGKILL from outside as soon as the Evaluate folder appears",
         "Evaluate done:", UP_TO["Sample"], "rerun completes with the same bits", "killed; rerun 0",
         spec={"poll": "Evaluate/*", "task": "Evaluate"}),
]

DAMAGE = [
    Case("damaged-ckpt-truncated", "newest checkpoint of an interrupted run truncated",
         "skipping damaged checkpoint step-00000012.ckpt", UP_TO["Train"],
         "rerun resumes from the previous checkpoint (step 6) and ends with the same bits", "0",
         spec={"damage": "truncate", "which": [0], "resumed": "resumed from step-00000006.ckpt"}),
    Case("damaged-ckpt-corrupt", "newest checkpoint of an interrupted run has flipped bytes",
         "checksum mismatch", UP_TO["Train"],
         "rerun resumes from the previous checkpoint (step 6) and ends with the same bits", "0",
         spec={"damage": "flip", "which": [0], "resumed": "resumed from step-00000006.ckpt"}),
    Case("damaged-ckpt-all", "every checkpoint of an interrupted run damaged",
         "skipping damaged checkpoint step-00000006.ckpt", UP_TO["Train"],
         "rerun trains from step 0 and ends with the same bits", "0",
         spec={"damage": "truncate", "which": [0, 1], "resumed": None}),
    Case("damaged-metrics-line", "torn last line in metrics.jsonl of an interrupted run",
         "resumed from step-00000012.ckpt", UP_TO["Train"],
         "the torn line is dropped and redone; same bits", "0", spec={}),
    Case("damaged-shard", "truncated Parquet shard in a complete EncodeShards folder",
         "train-00000.parquet is damaged or unreadable", UP_TO["EncodeShards"],
         "the message names the folder to delete; after deleting it the rerun completes",
         spec={"stage": "EncodeShards", "file": "train-00000.parquet", "then": "Train"}),
    Case("damaged-token-file", "truncated train.tokens (the ids Train reads) in a complete EncodeShards folder",
         "train.tokens is missing or has the wrong size", UP_TO["EncodeShards"],
         "the message names the folder to delete; after deleting it the rerun completes",
         spec={"stage": "EncodeShards", "file": "train.tokens", "then": "Train"}),
    Case("damaged-vocab", "truncated vocab.json in a complete BuildVocab folder",
         "vocab.json is damaged", UP_TO["BuildVocab"],
         "the message names the folder to delete; after deleting it the rerun completes",
         spec={"stage": "BuildVocab", "file": "vocab.json", "then": "Train"}),
    Case("damaged-corpus", "truncated corpus.txt in a complete Download folder",
         "corpus.txt is missing or damaged (it is not the text Download wrote): delete the folder",
         UP_TO["Download"],
         "the message names the folder to delete; after deleting it the rerun completes",
         spec={"stage": "Download", "file": "corpus.txt", "then": "Train"}),
    Case("damaged-best-ckpt", "corrupted best.ckpt in a complete Train folder",
         "best.ckpt is damaged (checksum mismatch): delete the folder", UP_TO["Train"],
         "the message names the folder to delete; after deleting it the rerun completes",
         spec={"stage": "Train", "file": "best.ckpt", "then": "Sample"}),
]

DIVERGENCE = [
    Case("diverge-nan", "learning rate 1e38, no clipping: the training loss becomes NaN",
         "loss became nan (gradient norm nan) at step", UP_TO["EncodeShards"],
         "the newest checkpoint (before the step named) is intact and loadable",
         spec={"overrides": {"train.learning_rate": 1e38, "train.clip_norm": 0.0,
                             "train.checkpoint_every": 1}}),
    Case("diverge-overflow", "learning rate 1e6, no clipping: the validation loss explodes",
         "nats/char at step", UP_TO["EncodeShards"],
         "the newest checkpoint (before the step named) is intact and loadable",
         spec={"overrides": {"train.learning_rate": 1e6, "train.clip_norm": 0.0}}),
]


def bad(id, fault, sees, kept=(), task="Download", note="fix the input and rerun", **spec):
    return Case(id, fault, sees, kept, note, spec={"task": task, **spec})


BAD_INPUTS = [
    bad("input-empty-corpus", "empty corpus file", "the corpus is empty: check the corpus sources",
        UP_TO["Download"],
        "BuildVocab", corpus=b""),
    bad("input-binary-corpus", "binary / non-UTF-8 corpus file",
        "corpus.txt is not UTF-8 text (bad or NUL byte at offset 11)",
        corpus=b"ROMEO:\nHi\n\n\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"),
    bad("input-latin1-corpus", "Latin-1 encoded corpus file", "bad or NUL byte at offset 8",
        corpus="ROMEO:\nSí, señor.\n\n".encode("latin-1")),
    bad("input-short-corpus", "corpus shorter than one training window (seq_len 32)",
        "fewer than seq_len + 1 = 33: use a longer corpus or a smaller seq_len", UP_TO["BuildVocab"], "EncodeShards",
        corpus=b"ROMEO:\nHi.\n\n"),
    bad("input-short-for-batch", "corpus too short for batch_size lanes of one window",
        "too short for 8 lanes of 33 chars; lower batch_size or seq_len", UP_TO["EncodeShards"], "Train",
        corpus=b"ROMEO:\nO my sweet lord, what night is this?\n\n" * 6),
    bad("input-missing-file", "corpus path that does not exist",
        "no-such-corpus.txt`: fix the `path:` of this source",
        overrides={"corpus.sources": [{"path": "{tmp}/no-such-corpus.txt"}]}),
    bad("input-url-unreachable", "URL on a closed port", "could not download http://127.0.0.1:",
        overrides={"corpus.sources": [{"url": "http://127.0.0.1:{closed_port}/corpus.txt"}],
                   "corpus.retries": 0}),
    bad("input-url-checksum", "URL whose content does not match the configured sha256",
        "but the config expects " + "0" * 64,
        overrides={"corpus.sources": [{"url": "http://127.0.0.1:{server_port}/corpus.txt",
                                       "sha256": "0" * 64}], "corpus.retries": 0}),
    bad("input-yaml-syntax", "YAML syntax error in the config",
        "pipeline.yaml:9:13: YAML syntax error", edit=("hidden_size: 24", "hidden_size: [24")),
    bad("input-unknown-key", "misspelt key in the config", "unknown key 'model.hiden_size'",
        edit=("hidden_size: 24", "hiden_size: 24")),
    bad("input-unknown-section", "unknown section in the config", "unknown section 'modle'",
        edit=("model:", "modle:")),
    bad("input-wrong-type", "value of the wrong type", "'train.steps' must be int, got str 'many'",
        overrides={"train.steps": "many"}),
    bad("input-negative-size", "negative size", "'model.hidden_size' must be > 0, got -3",
        overrides={"model.hidden_size": -3}),
    bad("input-zero-size", "zero size", "'shards.seq_len' must be > 0, got 0",
        overrides={"shards.seq_len": 0}),
    bad("input-zero-batch", "zero batch size", "'train.batch_size' must be > 0, got 0",
        overrides={"train.batch_size": 0}),
    bad("input-prime-unknown", "sample.prime with characters outside the vocabulary",
        "characters not in the corpus vocabulary: '~', '€'", UP_TO["Train"], "Sample",
        "set vocab.unknown: skip to drop them instead (tested: then Sample completes)",
        overrides={"sample.prime": "ROMEO~€:"}),
    bad("input-unknown-strategy", "unknown sample.strategy", "sample.strategy 'bogus' is unknown",
        UP_TO["Train"], "Sample", overrides={"sample.strategy": "bogus"}),
    bad("input-config-missing", "--config path that does not exist",
        "no-such-config.yaml does not exist; pass --config PATH to an existing YAML file",
        config="{tmp}/no-such-config.yaml"),
    bad("input-artifacts-under-file", "artifacts_dir below a regular file (unwritable, even for root)",
        "set artifacts_dir in the config to a folder you can write",
        overrides={"artifacts_dir": "{tmp}/afile/artifacts"}, make_file="afile"),
    bad("input-artifacts-readonly", "artifacts_dir in a read-only folder (skipped as root)",
        "set artifacts_dir in the config to a folder you can write",
        overrides={"artifacts_dir": "{tmp}/ro/artifacts"}, read_only="ro"),
]

CONCURRENCY = [
    Case("concurrent-same-run", "the same pipeline started twice at once",
         "already done by another run", STAGES,
         "each stage runs once; the other run waits on the folder lock and reuses the result",
         "0 and 0 (or 10, Luigi's `already running`)"),
    Case("concurrent-holder-killed", "a second run waits on a folder lock whose holder is SIGKILLed",
         "resumed from step-", UP_TO["Train"],
         "the lock dies with its holder; the waiting run resumes from its checkpoints, same bits",
         "holder killed; waiting run 0"),
]
