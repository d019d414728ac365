"""Warm start across a grown vocabulary: the mapping, its refusals, and init_from resolution."""
import json

import numpy as np
import pytest

from model import CIFGLSTM
from pipeline.init_from import resolve
from pipeline.runs import vocab_path_of
from pipeline.tasks import Train
from stages.errors import UserError
from stages.train import run_training, save_net
from stages.vocab import Vocab
from stages.warm_start import warm_start
from tests.conftest import write_config

OLD = Vocab(tuple(sorted("\n abcdeh!")))
NEW = Vocab(tuple(sorted("\n abcdeh?XZ")))        # adds ?, X, Z; drops !


def nets(old_vocab=OLD, new_vocab=NEW, **new_kw):
    old = CIFGLSTM(old_vocab.size, 8, 2, old_vocab.size, seed=1)
    kw = dict(seed=2, **new_kw)
    new = CIFGLSTM(new_vocab.size, kw.pop("hidden", 8), kw.pop("layers", 2), new_vocab.size, **kw)
    return old, new


def test_known_chars_carry_over_and_new_chars_keep_their_fresh_rows():
    old, new = nets()
    fresh = {k: v.copy() for k, v in new.params.items()}
    info = warm_start(new, NEW, old, OLD)
    assert info == {"chars_added": ["?", "X", "Z"], "chars_dropped": ["!"], "chars_kept": 8}
    for c in OLD.chars:
        if c in NEW.stoi:
            i, j = NEW.stoi[c], OLD.stoi[c]
            np.testing.assert_array_equal(new.params["W0"][i], old.params["W0"][j])
            np.testing.assert_array_equal(new.params["Wy"][:, i], old.params["Wy"][:, j])
            assert new.params["by"][i] == old.params["by"][j]
    for c in info["chars_added"]:
        i = NEW.stoi[c]
        np.testing.assert_array_equal(new.params["W0"][i], fresh["W0"][i])
        np.testing.assert_array_equal(new.params["Wy"][:, i], fresh["Wy"][:, i])
        assert new.params["by"][i] == fresh["by"][i]
    np.testing.assert_array_equal(new.params["W0"][NEW.size:], old.params["W0"][OLD.size:])
    for name in ("b0", "W1", "b1"):
        np.testing.assert_array_equal(new.params[name], old.params[name])


def test_same_vocabulary_copies_everything():
    old, new = nets(OLD, OLD, dropout=0.3)
    info = warm_start(new, OLD, old, OLD)
    np.testing.assert_array_equal(new.flat, old.flat)
    assert info["chars_added"] == [] and info["chars_dropped"] == []


def test_known_characters_predict_as_before():
    # Same context of known characters: the logits of known characters are unchanged.
    old, new = nets()
    warm_start(new, NEW, old, OLD)
    text = "head bead\n"
    p_old, _ = old.posterior(OLD.encode(text)[:, None].astype(np.int64))
    p_new, _ = new.posterior(NEW.encode(text)[:, None].astype(np.int64))
    known = [c for c in OLD.chars if c in NEW.stoi]
    lo = np.log(p_old[:, 0, [OLD.stoi[c] for c in known]])
    ln = np.log(p_new[:, 0, [NEW.stoi[c] for c in known]])
    # softmax normalisers differ (other characters), the differences between known ones do not
    np.testing.assert_allclose(lo - lo[:, :1], ln - ln[:, :1], atol=1e-5)


@pytest.mark.parametrize("kw,message", [({"hidden": 12}, "model.hidden_size 8 -> 12"),
                                        ({"layers": 1}, "model.num_layers 2 -> 1"),
                                        ({"cell": "lstm"}, "model.cell cifg -> lstm"),
                                        ({"dtype": np.float64}, "model.dtype float32 -> float64")])
def test_another_architecture_is_refused(kw, message):
    old, new = nets(**kw)
    before = new.flat.copy()
    with pytest.raises(UserError, match="another architecture") as e:
        warm_start(new, NEW, old, OLD)
    assert message in str(e.value)
    np.testing.assert_array_equal(new.flat, before)


def test_a_vocabulary_that_does_not_fit_its_model_is_refused():
    old, new = nets()
    with pytest.raises(UserError, match="does not belong"):
        warm_start(new, NEW, old, NEW)


# ---- resolution of train.init_from against an artifacts folder ----------------------------

def fake_run(root, fp, finished, hidden=8, vocab=OLD, chain=True):
    """A complete Train folder (+ its EncodeShards/BuildVocab) as the pipeline leaves it."""
    shards_fp, vocab_fp = "e" * 14 + fp[:2], "b" * 14 + fp[:2]
    train = root / "Train" / fp[:16]
    train.mkdir(parents=True)
    net = CIFGLSTM(vocab.size, hidden, 2, vocab.size, seed=3)

    save_net(net, train / "best.ckpt", {"step": 5})
    config = {"model.cell": "cifg", "model.hidden_size": hidden, "model.num_layers": 2,
              "model.dropout": 0.1, "model.dtype": "float32", "model.seed": 0}
    (train / "meta.json").write_text(json.dumps({"fingerprint": fp, "finished": finished, "config": config,
                                                 "inputs": {"EncodeShards": shards_fp}}))
    (train / "_COMPLETE").write_text(fp)
    if chain:
        (root / "EncodeShards" / shards_fp).mkdir(parents=True)
        (root / "EncodeShards" / shards_fp / "meta.json").write_text(
            json.dumps({"inputs": {"BuildVocab": vocab_fp}}))
        (root / "BuildVocab" / vocab_fp).mkdir(parents=True)
        vocab.save(root / "BuildVocab" / vocab_fp / "vocab.json")
    return train, net


def task_with(tmp_path, init_from, hidden=8):
    cfg = write_config(tmp_path, {"train.init_from": init_from, "model.hidden_size": hidden})
    return Train(config=str(cfg))


def test_previous_is_the_newest_run_with_the_same_architecture(tmp_path):
    root = tmp_path / "artifacts"
    fake_run(root, "1" * 64, finished=100)
    newest, _ = fake_run(root, "2" * 64, finished=200)
    fake_run(root, "3" * 64, finished=300, hidden=16)       # newer, other architecture
    source = resolve(task_with(tmp_path, "previous"))
    assert source["path"] == str(newest / "best.ckpt") and source["fingerprint"] == "2" * 64
    assert source["vocab"] == vocab_path_of(newest) and Vocab.load(source["vocab"]) == OLD


def test_previous_skips_a_run_whose_vocabulary_is_gone(tmp_path):
    root = tmp_path / "artifacts"
    older, _ = fake_run(root, "4" * 64, finished=100)
    fake_run(root, "5" * 64, finished=200, chain=False)
    assert resolve(task_with(tmp_path, "previous"))["path"] == str(older / "best.ckpt")


def test_previous_without_any_earlier_run_is_a_cold_start(tmp_path):
    assert resolve(task_with(tmp_path, "previous")) is None
    assert resolve(task_with(tmp_path, "")) is None


def test_fingerprint_prefix_and_path(tmp_path):
    root = tmp_path / "artifacts"
    a, _ = fake_run(root, "a1" + "0" * 62, finished=1)
    fake_run(root, "a2" + "0" * 62, finished=2)
    assert resolve(task_with(tmp_path, "a1"))["path"] == str(a / "best.ckpt")
    with pytest.raises(UserError, match="matches 2 Train runs"):
        resolve(task_with(tmp_path, "a"))
    with pytest.raises(UserError, match="no complete Train run"):
        resolve(task_with(tmp_path, "ff"))
    assert resolve(task_with(tmp_path, str(a / "best.ckpt")))["fingerprint"] == "a1" + "0" * 62
    with pytest.raises(UserError, match="does not exist"):
        resolve(task_with(tmp_path, str(tmp_path / "nope.ckpt")))
    with pytest.raises(UserError, match="is not `previous`"):
        resolve(task_with(tmp_path, "latest"))


def test_checkpoint_outside_artifacts_needs_a_vocab_next_to_it(tmp_path):
    train, _ = fake_run(tmp_path / "elsewhere", "c" * 64, finished=1, chain=False)
    with pytest.raises(UserError, match="cannot find the vocabulary"):
        resolve(task_with(tmp_path, str(train / "best.ckpt")))
    OLD.save(train / "vocab.json")
    assert resolve(task_with(tmp_path, str(train / "best.ckpt")))["vocab"] == train / "vocab.json"


def test_init_from_off_keeps_the_train_fingerprint_and_a_value_changes_it(tmp_path):
    off = Train(config=str(write_config(tmp_path, name="a.yaml")))
    prev = Train(config=str(write_config(tmp_path, {"train.init_from": "previous"}, name="b.yaml")))
    assert "train.init_from" not in off.slice() and prev.slice()["train.init_from"] == "previous"
    assert off.fingerprint() != prev.fingerprint()


def test_run_training_records_the_warm_start_and_keeps_it_when_resumed(tmp_path):
    from pipeline.config import load_config
    cfg = load_config(write_config(tmp_path, {"train.steps": 4, "train.checkpoint_every": 2,
                                              "train.eval_every": 2, "model.hidden_size": 8}))
    old = CIFGLSTM(OLD.size, 8, 2, OLD.size, seed=1)
    calls = []

    def init(net):
        calls.append(1)
        return {"path": "old/best.ckpt", "fingerprint": "f" * 64, **warm_start(net, NEW, old, OLD)}
    ids = np.resize(NEW.encode("bead ahead? XZ\nhe cab\n"), 4000).astype(np.uint8)
    out = tmp_path / "run"
    res = run_training(ids, ids[:500], NEW, cfg.model, cfg.train, 8, out, log=lambda m: None, init=init)
    assert res["init_from"]["chars_added"] == ["?", "X", "Z"] and res["init_from"]["path"] == "old/best.ckpt"
    assert json.loads((out / "init_from.json").read_text()) == res["init_from"]
    (out / "checkpoints" / "step-00000004.ckpt").unlink()             # as if it died after step 2
    res2 = run_training(ids, ids[:500], NEW, cfg.model, cfg.train, 8, out, log=lambda m: None, init=init)
    assert calls == [1] and res2["resumed_from"] == "step-00000002.ckpt"
    assert res2["init_from"] == res["init_from"]
