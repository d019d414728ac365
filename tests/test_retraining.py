"""Scheduled retraining: a corpus folder that grows, nightly reruns, warm starts, and gc."""
import json

from pipeline.cli import main as cli_main
from pipeline.tasks import BuildVocab, Download, EncodeShards, Train
from tests.conftest import play_text, run_luigi, write_config

ALL = ["Download", "BuildVocab", "EncodeShards", "Train", "Sample", "Evaluate"]
UP_TO_TRAIN = (Download, BuildVocab, EncodeShards, Train)


def corpus_folder(root):
    folder = root / "corpora"
    folder.mkdir()
    (folder / "part1.txt").write_text(play_text(40000, seed=0))
    (folder / "part2.txt").write_text(play_text(20000, seed=1))
    return folder


def stale(cfg):
    return [cls.__name__ for cls in UP_TO_TRAIN if not cls(config=str(cfg)).complete()]


def test_corpus_folder_changes_make_everything_downstream_stale(tmp_path):
    folder = corpus_folder(tmp_path)
    cfg = write_config(tmp_path, corpus=folder)
    code, out, ran = run_luigi(cfg, task="Train")
    assert code == 0 and ran == ["Download", "BuildVocab", "EncodeShards", "Train"], out
    assert stale(cfg) == []
    everything = [cls.__name__ for cls in UP_TO_TRAIN]

    (folder / "notes.md").write_text("not a .txt file: not part of the corpus\n")
    assert stale(cfg) == []                                     # unchanged folder: all cached

    (folder / "part3.txt").write_text("ROMEO:\nA third file.\n\n")          # add
    assert stale(cfg) == everything
    (folder / "part3.txt").unlink()
    assert stale(cfg) == []                                     # content identity: found again

    original = (folder / "part2.txt").read_text()
    (folder / "part2.txt").write_text(original.replace("lord", "lady", 1))   # change
    assert stale(cfg) == everything
    (folder / "part2.txt").write_text(original)
    assert stale(cfg) == []

    (folder / "part2.txt").unlink()                                         # remove
    assert stale(cfg) == everything
    (folder / "part2.txt").write_text(original)
    assert stale(cfg) == []
    assert run_luigi(cfg, task="Train")[2] == []


def test_nightly_command_runs_nothing_unless_the_corpus_grew_then_warm_starts(tmp_path):
    folder = corpus_folder(tmp_path)
    cfg = write_config(tmp_path, {"train.init_from": "previous"}, corpus=folder)
    code, out, ran = run_luigi(cfg)                               # first night: cold start
    assert code == 0 and sorted(ran) == sorted(ALL), out
    assert "starting from random weights" in out
    first = Train(config=str(cfg)).folder()
    assert json.loads((first / "meta.json").read_text())["result"]["init_from"] is None

    code, out, ran = run_luigi(cfg)                               # second night, no new text
    assert code == 0 and ran == [], out

    (folder / "part3.txt").write_text("ZOUNDS:\nQuick, Xerxes! 3 jugs & 7 jars; yes?\n\n")
    code, out, ran = run_luigi(cfg)                               # the corpus grew
    assert code == 0 and ran == ALL, out
    second = Train(config=str(cfg)).folder()
    assert second != first and "warm start from" in out
    result = json.loads((second / "meta.json").read_text())["result"]
    first_meta = json.loads((first / "meta.json").read_text())
    assert result["init_from"]["path"] == str(first / "best.ckpt")
    assert result["init_from"]["fingerprint"] == first_meta["fingerprint"]
    assert {"Z", "X", "3", "&", "7", ";"} <= set(result["init_from"]["chars_added"])
    assert result["init_from"]["chars_dropped"] == []
    assert json.loads((second / "init_from.json").read_text()) == result["init_from"]

    code, out, ran = run_luigi(cfg)                               # and quiet again
    assert code == 0 and ran == [], out


def test_gc_lists_then_removes_only_unreachable_folders(tmp_path, capsys):
    a = write_config(tmp_path, name="a.yaml")
    b_corpus = tmp_path / "b.txt"
    b_corpus.write_text(play_text(20000, seed=5))
    b = write_config(tmp_path, name="b.yaml", corpus=b_corpus)
    for cfg in (a, b):
        assert run_luigi(cfg, task="BuildVocab")[0] == 0
    old = [Download(config=str(a)).folder(), BuildVocab(config=str(a)).folder()]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(corpus.read_text() + "ROMEO:\nOne more line.\n\n")       # a moves on
    assert run_luigi(a, task="BuildVocab")[2] == ["Download", "BuildVocab"]
    keep = [cls(config=str(c)).folder() for c in (a, b) for cls in (Download, BuildVocab)]
    assert all(p.exists() for p in old + keep)

    assert cli_main(["gc", "--config", str(a), "--config", str(b)]) == 0      # dry run
    out = capsys.readouterr().out
    assert sorted(l.split()[-1] for l in out.splitlines() if l.startswith("would remove")) == \
        sorted(map(str, old))
    assert "2 folder(s) unreachable" in out and all(p.exists() for p in old)

    assert cli_main(["gc", "--config", str(a), "--config", str(b), "--yes"]) == 0
    out = capsys.readouterr().out
    assert out.count("removing ") == 2
    assert not any(p.exists() for p in old) and all(p.exists() for p in keep)
    assert all(cls(config=str(c)).complete() for c in (a, b) for cls in (Download, BuildVocab))

    assert cli_main(["gc", "--config", str(a)]) == 0              # only a: b's outputs would go
    out = capsys.readouterr().out
    assert {str(p) for p in keep[2:]} <= set(out.split()) and "removing" not in out
