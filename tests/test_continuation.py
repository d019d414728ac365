"""Which finished run a longer one continues from: never one that went further than asked."""
import json

from pipeline.store_local import MARKER
from pipeline.continuation import previous_run_checkpoint


class FakeTask:
    def __init__(self, root, steps, budget):
        self.root, self.cfg = root, {"train.steps": steps, "train.time_budget_s": budget, "model.x": 1}

    def folder(self):
        return self.root / "Train" / "new"

    def slice(self):
        return dict(self.cfg)

    def upstream(self):
        return []


def finished_run(root, name, steps, seconds, budget, config_steps=10 ** 6):
    folder = root / "Train" / name   # the layout of <artifacts_dir>/Train/<fingerprint>
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / f"step-{steps:08d}.ckpt").write_bytes(b"x")
    (folder / "last.ckpt").write_bytes(b"x")
    meta = {"inputs": {}, "config": {"train.steps": config_steps, "train.time_budget_s": budget,
                                     "model.x": 1},
            "result": {"steps": steps, "train_seconds": seconds}}
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / MARKER).write_text("done")
    return folder


def test_a_longer_time_budget_continues_the_shorter_run(tmp_path):
    short = finished_run(tmp_path, "a", 40, 60.2, 60)
    got = previous_run_checkpoint(FakeTask(tmp_path, 10 ** 6, 120))
    assert got == short / "checkpoints" / "step-00000040.ckpt"


def test_a_shorter_time_budget_never_takes_a_longer_run(tmp_path):
    finished_run(tmp_path, "a", 80, 120.1, 120)
    assert previous_run_checkpoint(FakeTask(tmp_path, 10 ** 6, 60)) is None


def test_more_steps_continue_and_fewer_do_not(tmp_path):
    run = finished_run(tmp_path, "a", 30, 5.0, 0, config_steps=30)
    assert previous_run_checkpoint(FakeTask(tmp_path, 50, 0)) == run / "checkpoints" / "step-00000030.ckpt"
    assert previous_run_checkpoint(FakeTask(tmp_path, 20, 0)) is None
