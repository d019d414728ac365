"""Long stages report progress (with an ETA) to the scheduler, and running out of memory is
one line naming the stage, what it was doing and the key to lower, with nothing marked done."""
import luigi
from luigi.scheduler import Scheduler
import pytest

import pipeline  # noqa: F401  (registers the tasks)
from pipeline.store_local import MARKER
from pipeline.tasks import Evaluate
from stages.errors import UserError
from stages.ngram import KneserNeyLM
from tests.conftest import write_config


def test_progress_reaches_the_scheduler_then_out_of_memory_is_one_line(tmp_path, monkeypatch):
    seen = []   # (stage, percentage or status message) as the scheduler received them
    for name in ("set_task_progress_percentage", "set_task_status_message"):
        original = getattr(Scheduler, name)
        def record(self, task_id, value, _original=original):
            seen.append((task_id.split("_")[0], value))
            return _original(self, task_id, value)
        monkeypatch.setattr(Scheduler, name, record)
    cfg = write_config(tmp_path)
    assert luigi.build([Evaluate(config=str(cfg))], local_scheduler=True, log_level="WARNING")
    for stage in ("BuildVocab", "EncodeShards", "Evaluate"):
        values = [v for s, v in seen if s == stage and not isinstance(v, str)]
        messages = [v for s, v in seen if s == stage and isinstance(v, str)]
        assert values and values == sorted(values), (stage, values)
        assert any("ETA" in m for m in messages), (stage, messages)
    assert [v for s, v in seen if s == "EncodeShards" and not isinstance(v, str)][-1] == 100.0

    # The same Evaluate, unable to allocate while fitting the n-gram: a fixable one-line error.
    def no_memory(self, ids):
        raise MemoryError()
    monkeypatch.setattr(KneserNeyLM, "fit", no_memory)
    write_config(tmp_path, {"evaluate.ngram_order": 3})
    task = Evaluate(config=str(cfg))
    with pytest.raises(UserError) as err:
        task.run()
    message = str(err.value)
    assert message.startswith("Evaluate ran out of memory while scoring the held-out characters")
    assert "lower evaluate.max_chars or evaluate.ngram_max_chars" in message and "\n" not in message
    assert not (task.folder() / MARKER).exists()
