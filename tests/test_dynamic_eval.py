"""Dynamic evaluation: scored before learnt from, rate 0 is the static pass, folds never peek."""
import dataclasses

import numpy as np
import pytest

from model import CIFGLSTM
from model.dynamic import DynamicSettings, dynamic_nll, gradient_rms, layout
from model.evaluate import stream_nll
from pipeline.schema import EvaluateConfig
from stages.dynamic_eval import dynamic_heldout, half_of_positions, halves, tuning_rows

V = 12


def net_of(dtype=np.float64, hidden=24):
    return CIFGLSTM(V, hidden, 2, V, seed=3, dtype=dtype, char_inputs=True)


def stream(n, seed):
    return np.random.default_rng(seed).integers(0, V, n)


def cfg_of(**kw):
    base = dict(lanes=4, burn_in=60, dynamic=True, dynamic_segment=20, dynamic_tune_chars=400,
                dynamic_rate=0.01, dynamic_decay=0.01)
    return dataclasses.replace(EvaluateConfig(), **{**base, **kw})


@pytest.fixture(scope="module")
def rms():
    return gradient_rms(net_of(), stream(6000, 1), 20, 4, 20)


def test_rate_zero_reproduces_the_static_losses(rms):
    net, val, ctx = net_of(), stream(3000, 2), stream(60, 3)
    static = stream_nll(net, val, context=ctx, lanes=4, burn_in=60)
    dyn = dynamic_nll(net, val, DynamicSettings(0.0, 0.05, 20), rms, context=ctx, lanes=4, burn_in=60)
    assert np.array_equal(dyn, static, equal_nan=True)      # float64: bit for bit
    net32 = net_of(np.float32)
    static32 = stream_nll(net32, val, context=ctx, lanes=4, burn_in=60)
    dyn32 = dynamic_nll(net32, val, DynamicSettings(0.0, 0.05, 20), rms.astype(np.float32),
                        context=ctx, lanes=4, burn_in=60)
    # float32: 20-row matrix products round differently from the static pass's 256-row ones
    assert abs(np.nanmean(dyn32) - np.nanmean(static32)) < 1e-9
    assert np.allclose(dyn32, static32, rtol=0, atol=1e-6, equal_nan=True)


def test_a_segment_never_gains_from_itself_repeated_text_probe():
    """S S S S, one lane, S one segment: copy 1 scores exactly as the static model (nothing was
    learnt before it), later copies better (the model does learn S, so a leak would show)."""
    net, seg = net_of(), 20
    rms = gradient_rms(net, stream(6000, 1), seg, 1, 50)
    text = np.tile(stream(seg, 4), 4)
    static = stream_nll(net, text, lanes=1)
    dyn = dynamic_nll(net, text, DynamicSettings(0.01, 0.0, seg), rms, lanes=1)
    assert np.array_equal(dyn[:seg], static[:seg], equal_nan=True)
    assert np.nanmean(dyn[seg:]) < np.nanmean(static[seg:]) - 0.05


def test_scores_do_not_depend_on_later_characters(rms):
    """Changing the last character of a segment leaves every earlier score of it unchanged: the
    update that learns from that character comes after the segment is scored."""
    net, seg = net_of(), 20
    a = stream(200, 5)
    b = a.copy()
    b[2 * seg - 1] = (b[2 * seg - 1] + 1) % V
    s = DynamicSettings(0.3, 0.01, seg)
    da, db = (dynamic_nll(net, t, s, rms, lanes=1) for t in (a, b))
    assert np.array_equal(da[:2 * seg - 1], db[:2 * seg - 1], equal_nan=True)
    assert not np.allclose(da[2 * seg:], db[2 * seg:])     # ... and learns from it after


def test_the_weights_are_the_trained_ones_afterwards(rms):
    net = net_of()
    before = net.flat.copy()
    dynamic_nll(net, stream(500, 6), DynamicSettings(0.3, 0.01, 20), rms, lanes=2, burn_in=10)
    dynamic_heldout(net, stream(3000, 1), stream(2000, 7), None, cfg_of())
    assert np.array_equal(net.flat, before)


def test_tuning_rows_lie_in_the_other_half_than_the_one_they_choose_for():
    val = stream(3000, 8)
    lay = layout(val, stream(60, 9), 4, 60)
    half = half_of_positions(lay, len(val))
    (_, mid), _ = halves(lay)[0]
    x, y, w, pos, offset = lay
    for tuned in (0, 1):
        warm, start, end = tuning_rows(lay, tuned, 400, 60)
        tuned_pos = pos[start:end][w[start:end]] - offset
        assert len(tuned_pos) > 350 and set(half[tuned_pos]) == {tuned}
        # the warm-up rows before half 2 are read as context only: they are not tuned on
        assert (start <= mid) if tuned == 0 else (start == mid and warm == mid - 60)
    assert set(half[~np.isnan(stream_nll(net_of(), val, context=stream(60, 9), lanes=4,
                                         burn_in=60))]) == {0, 1}


def _read_by(lay, rows):
    """Positions of the scored ids whose characters rows [r0, r1) read (as input or target)."""
    x, y, w, pos, offset = lay
    p = pos[rows[0]:rows[1]].ravel() - offset
    p = np.concatenate([p, p - 1])
    return np.unique(p[p >= 0])


def test_a_half_is_scored_with_settings_chosen_without_its_text():
    """Rewriting every character of half 2 that half 1's tuning rows do not read (they read a few
    of them as the burn-in context before each lane) leaves half 2's settings and the whole grid
    unchanged; and the same the other way round."""
    net, train, ctx = net_of(), stream(3000, 1), stream(60, 3)
    val = stream(4000, 10)
    lay = layout(val, ctx, 4, 60)
    half = half_of_positions(lay, len(val))
    _, info = dynamic_heldout(net, train, val, ctx, cfg_of())
    for tuned, rewritten in ((0, 1), (1, 0)):
        warm, start, end = tuning_rows(lay, tuned, 400, 60)
        change = np.flatnonzero(half == rewritten)
        change = np.setdiff1d(change, _read_by(lay, (warm, end)))
        assert len(change) > 1000
        other = val.copy()
        other[change] = (other[change] + 1) % V
        _, info2 = dynamic_heldout(net, train, other, ctx, cfg_of())
        scored_fold = info["folds"][rewritten]
        assert scored_fold["tuned_on_half"] == tuned + 1
        assert scored_fold["grid"] == info2["folds"][rewritten]["grid"]
        assert info["folds"][tuned]["grid"] != info2["folds"][tuned]["grid"]   # a real change


def test_untuned_settings_are_the_configured_ones_and_rate_zero_row_is_static():
    net, train, val, ctx = net_of(), stream(3000, 1), stream(2000, 13), stream(60, 3)
    out, info = dynamic_heldout(net, train, val, ctx, cfg_of(dynamic_tune=False, dynamic_rate=0.0))
    assert [f["rate"] for f in info["folds"]] == [0.0, 0.0] and not info["tuned"]
    assert np.array_equal(out, stream_nll(net, val, context=ctx, lanes=4, burn_in=60), equal_nan=True)
