"""Damaged files on disk: a damaged checkpoint is skipped; a damaged output of a complete stage
stops the next stage with one line naming the folder to delete, and deleting it heals the run."""
import re
import shutil

import pytest

from tests.conftest import run_luigi
from tests.faults_support import (assert_same_results, check_artifacts, complete_stages, killed_run,
                                  reference_results, seeded_config)
from tests.reliability_cases import DAMAGE, UP_TO

CASES = {c.id: c for c in DAMAGE}


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    return reference_results(tmp_path_factory.mktemp("damage-ref"))


def interrupted_training(tmp_path, reference):
    """A Train folder killed just after its step-12 checkpoint: checkpoints 6 and 12 on disk."""
    cfg = seeded_config(tmp_path, reference, UP_TO["EncodeShards"])
    killed_run(cfg, "Train", ("after", str(tmp_path / "artifacts/Train/*/checkpoints/step-00000012.ckpt"), 1))
    (train,) = folders(tmp_path / "artifacts" / "Train")
    return cfg, train


def folders(stage_dir):
    return [p for p in stage_dir.iterdir() if p.is_dir()]   # not the .<fingerprint>.lock files


def damage(path, how):
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[:len(data) // 2])
    else:   # flip bytes in the middle: same length, wrong content
        mid = len(data) // 2
        path.write_bytes(data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 16]) + data[mid + 16:])


def one_line(out, text):
    """`text` is on exactly one line of the output, which has no traceback; returns that line."""
    lines = [line for line in out.splitlines() if text in line]
    assert len(lines) == 1 and "Traceback" not in out, out
    return lines[0]


@pytest.mark.parametrize("case", [c for c in DAMAGE if "which" in c.spec], ids=lambda c: c.id)
def test_damaged_checkpoint_is_skipped_and_the_result_is_unchanged(case, tmp_path, reference):
    cfg, train = interrupted_training(tmp_path, reference)
    ckpts = sorted((train / "checkpoints").glob("step-*.ckpt"), reverse=True)
    assert [p.name for p in ckpts] == ["step-00000012.ckpt", "step-00000006.ckpt"]
    for i in case.spec["which"]:
        damage(ckpts[i], case.spec["damage"])

    code, out, ran = run_luigi(cfg, task="Train")
    assert code == 0 and ran == ["Train"], out
    assert case.sees in out and "Traceback" not in out
    assert out.count("skipping damaged checkpoint") == len(case.spec["which"])
    if case.spec["resumed"]:
        assert case.spec["resumed"] in out
    else:
        assert "resumed from" not in out
    assert check_artifacts(tmp_path / "artifacts") == set(case.kept)
    assert_same_results(reference, tmp_path, "Train")


def test_torn_metrics_line_is_dropped_and_redone(tmp_path, reference):
    case = CASES["damaged-metrics-line"]
    cfg, train = interrupted_training(tmp_path, reference)
    with open(train / "metrics.jsonl", "a") as fh:   # a write cut short by a crash
        fh.write('{"step": 18, "t": 0.1, "val_nats')

    code, out, ran = run_luigi(cfg, task="Train")
    assert code == 0 and ran == ["Train"], out
    assert case.sees in out and "Traceback" not in out
    assert check_artifacts(tmp_path / "artifacts") == set(case.kept)
    assert_same_results(reference, tmp_path, "Train")
    reference_rows = (reference["folder"] / "artifacts" / "Train").glob("*/metrics.jsonl")
    assert [r.split('"t"')[0] for r in (train / "metrics.jsonl").read_text().splitlines()] == \
           [r.split('"t"')[0] for r in next(reference_rows).read_text().splitlines()]


@pytest.mark.parametrize("case", [c for c in DAMAGE if "stage" in c.spec], ids=lambda c: c.id)
def test_damaged_output_of_a_complete_stage_names_the_folder_to_delete(case, tmp_path, reference):
    spec = case.spec
    cfg = seeded_config(tmp_path, reference, UP_TO[spec["stage"]])
    (folder,) = folders(tmp_path / "artifacts" / spec["stage"])
    damage(folder / spec["file"], "flip" if spec["file"].endswith(".ckpt") else "truncate")

    code, out, ran = run_luigi(cfg, task=spec["then"])
    assert code != 0, out
    line = one_line(out, case.sees)
    assert re.search(rf"delete (the folder )?{re.escape(str(folder))}\b", line), line
    assert complete_stages(tmp_path / "artifacts") == set(case.kept)

    shutil.rmtree(folder)                 # do what the message says
    code, out, ran = run_luigi(cfg, task=spec["then"])
    assert code == 0, out
    assert check_artifacts(tmp_path / "artifacts") == set(UP_TO[spec["then"]])
    assert_same_results(reference, tmp_path, spec["then"])
