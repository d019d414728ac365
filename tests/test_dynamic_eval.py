"""Dynamic evaluation: one stream in order, scored before learnt from, never looking ahead;
the guard; tuning reads the validation split only."""
import dataclasses

import numpy as np
import pytest

from model import CIFGLSTM
from model.dynamic import DynamicSettings, DynamicStream, dynamic_nll, gradient_rms
from model.evaluate import stream_nll
from pipeline.schema import EvaluateConfig
from stages.dynamic_eval import dynamic_heldout

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
    return gradient_rms(net_of(), stream(6000, 1), 20, 1, 50)


def test_rate_zero_is_the_trained_model_reading_the_same_stream(rms):
    net, text, ctx = net_of(), stream(3000, 2), stream(60, 3)
    static = stream_nll(net, text, context=ctx, lanes=1, burn_in=60)
    dyn, trips = dynamic_nll(net, text, DynamicSettings(0.0, 0.05, 20), rms, context=ctx, burn_in=60)
    # float64; 20-step segments and 256-step chunks may round a product's last bit differently
    assert np.allclose(dyn, static, rtol=0, atol=1e-12) and trips == 0


def test_a_segment_never_gains_from_itself_repeated_text_probe():
    """S S S S, S one segment: copy 1 scores exactly as the static model (nothing was learnt
    before it), later copies better (the model does learn S, so a leak would show)."""
    net, seg = net_of(), 20
    rms = gradient_rms(net, stream(6000, 1), seg, 1, 50)
    text = np.tile(stream(seg, 4), 4)
    static = stream_nll(net, text, lanes=1)
    dyn, _ = dynamic_nll(net, text, DynamicSettings(0.01, 0.0, seg), rms)
    assert np.array_equal(dyn[:seg], static[:seg], equal_nan=True)
    assert np.nanmean(dyn[seg:]) < np.nanmean(static[seg:]) - 0.05


@pytest.mark.parametrize("n", [1, 37, 400, 1111])
def test_a_score_never_depends_on_the_text_after_it(rms, n):
    """Rewrite every character from position n on (and make the text longer): the scores of the
    first n characters do not change, bit for bit; the later ones do (it does learn)."""
    net, a = net_of(), stream(1500, 5)
    b = np.concatenate([a[:n], (a[n:] + 1 + stream(len(a) - n, 6) % (V - 1)) % V, stream(500, 7)])
    assert not np.any(a[n:] == b[n:len(a)])
    s = DynamicSettings(0.3, 0.01, 20)
    (da, _), (db, _) = (dynamic_nll(net, t, s, rms, context=stream(60, 3), burn_in=60) for t in (a, b))
    assert np.array_equal(da[:n], db[:n], equal_nan=True)
    assert not np.allclose(da[n:], db[n:len(a)])


def test_blocks_of_whole_segments_score_as_one_pass(rms):
    net, text, s = net_of(), stream(2001, 8), DynamicSettings(0.2, 0.01, 20)
    whole, _ = dynamic_nll(net, text, s, rms)
    st = DynamicStream(net, rms, s)
    parts = [st.score(text[:101]), st.score(text[101:501]), st.score(text[501:])]
    st.close()
    assert np.array_equal(np.concatenate(parts), whole, equal_nan=True)


def test_the_guard_stops_a_diverging_rate_and_never_looks_ahead(rms):
    net, text, s = net_of(), stream(12000, 9), DynamicSettings(3.0, 0.0, 20)
    static = stream_nll(net, text, lanes=1)
    unguarded, _ = dynamic_nll(net, text, s, rms, guard=False)
    guarded, trips = dynamic_nll(net, text, s, rms)
    assert np.nanmean(unguarded) > np.nanmean(static) + 10        # the rate does diverge ...
    # ... and is caught: each trip costs its window's budget and the segment that crossed it
    assert 1 <= trips <= 12 and np.nanmean(guarded) < np.nanmean(static) + 0.25
    cut = 6000
    other, _ = dynamic_nll(net, np.concatenate([text[:cut], stream(3000, 10)]), s, rms)
    assert np.array_equal(other[:cut], guarded[:cut], equal_nan=True)


def test_the_weights_are_the_trained_ones_afterwards(rms):
    net = net_of()
    before = net.flat.copy()
    dynamic_nll(net, stream(500, 6), DynamicSettings(0.3, 0.01, 20), rms, context=stream(30, 1), burn_in=10)
    dynamic_heldout(net, stream(3000, 1), stream(1000, 7), None, stream(800, 2), None, cfg_of())
    assert np.array_equal(net.flat, before)


def test_tuning_reads_the_validation_split_only():
    """Another test text changes the scores, never the chosen settings or the tuning grid;
    another validation text changes the grid."""
    net, train, val, ctx = net_of(), stream(3000, 1), stream(1000, 11), stream(60, 3)
    test_a, test_b = stream(800, 12), stream(800, 13)
    out_a, info_a, _ = dynamic_heldout(net, train, val, ctx, test_a, val[-60:], cfg_of())
    out_b, info_b, _ = dynamic_heldout(net, train, val, ctx, test_b, val[-60:], cfg_of())
    assert info_a["grid"] == info_b["grid"] and (info_a["rate"], info_a["decay"]) == (info_b["rate"], info_b["decay"])
    assert not np.allclose(out_a, out_b)
    _, info_c, _ = dynamic_heldout(net, train, stream(1000, 14), ctx, test_a, val[-60:], cfg_of())
    assert info_c["grid"] != info_a["grid"]
    assert info_a["tuned_chars"] == 400 and len(info_a["grid"]) == 10


def test_untuned_settings_are_the_configured_ones_and_rate_zero_row_is_static():
    net, train, val, test, ctx = net_of(), stream(3000, 1), stream(500, 13), stream(2000, 14), stream(60, 3)
    out, info, tuned = dynamic_heldout(net, train, val, None, test, ctx,
                                       cfg_of(dynamic_tune=False, dynamic_rate=0.0))
    assert (info["rate"], info["grid"], tuned) == (0.0, None, None)
    assert np.allclose(out, stream_nll(net, test, context=ctx, lanes=1, burn_in=60), rtol=0, atol=1e-12)
