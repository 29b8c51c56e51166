"""Fine-tuning pieces: real windows, targets, transplanted backgrounds, replay, the report."""

import dataclasses

import numpy as np
import pytest
import torch

from pipeline import finetune as ft
from pipeline.model import build_model
from pipeline.realdata import RealSpectrum


def _record(n=700, baseline=None, start=100.0, name="a/b.txt", seed=0):
    x = np.linspace(start, start + 2000.0, n)
    rng = np.random.default_rng(seed)
    background = 1000.0 + 0.2 * (x - start) + 300 * np.exp(-(((x - 900) / 400) ** 2))
    bands = 500 * np.exp(-(((x - 1000) / 6) ** 2)) + 200 * np.exp(-(((x - 1600) / 10) ** 2))
    y = background + bands + rng.normal(0, 5, n)
    return RealSpectrum(name, "b", x, y, "a", True, baseline), background


def test_windows_cut_the_same_place_of_spectrum_and_target():
    record, background = _record()
    rng = np.random.default_rng(0)
    observed, target = ft.windows([record], [background], 50, 128, 0.5, rng)
    assert observed.shape == target.shape == (50, 128)
    assert observed.dtype == np.float32
    # the target is the background on the same window: observed - target is bands + noise,
    # whose median over a window is the noise level, not the background's
    assert np.all(np.abs(np.median(observed - target, axis=1)) < 30)
    assert target.min() >= background.min() - 1e-3 and target.max() <= background.max() + 1e-3
    # windows differ: positions and widths are random
    assert len({round(float(t[0]), 3) for t in target}) > 40


def test_windows_respect_the_smallest_window():
    record, background = _record()
    observed, target = ft.windows(
        [record], [record.x.astype(float)], 30, 64, 0.9, np.random.default_rng(1)
    )
    spans = target[:, -1] - target[:, 0]  # the target here is the axis itself
    full = record.x[-1] - record.x[0]
    assert np.all(spans >= 0.9 * full - 1e-3) and np.all(spans <= full + 1e-3)


def test_paired_records_keep_their_reference_baseline():
    reference = np.full(700, 3.0)
    paired, _ = _record(baseline=reference)
    raw, background = _record(name="c/d.txt")

    def estimate(x, y):
        return np.zeros_like(y) + 7.0

    targets = ft.classical_targets([paired, raw], estimate)
    assert np.array_equal(targets[0], reference)
    assert np.all(targets[1] == 7.0)


def test_transplant_keeps_the_real_bands_on_a_known_background(params):
    record, background = _record()
    rng = np.random.default_rng(2)
    observed, target = ft.windows([record], [background], 40, 128, 0.5, rng)
    sim = dataclasses.replace(params.simulate, length=128)
    new_observed, new_baseline = ft.transplant(observed, target, sim, rng)
    assert new_observed.shape == new_baseline.shape == (40, 128)
    # what was not baseline (bands + noise) is carried over exactly
    np.testing.assert_allclose(new_observed - new_baseline, observed - target, atol=1e-2)
    # the new backgrounds start at 0 and span band height / ratio, ratio in simulate's range
    bands = np.ptp(observed - target, axis=1)
    span = np.ptp(new_baseline, axis=1)
    low, high = sim.peaks.ratio
    assert np.all(span <= bands / low * 1.001) and np.all(span >= bands / high * 0.999)


def test_training_set_mixes_real_windows_and_replay(params):
    record, background = _record()
    replay = (np.full((10, 64), 5.0, np.float32), np.full((10, 64), 4.0, np.float32))
    settings = dataclasses.replace(params.finetune, targets="pseudo")
    data = ft.training_set([record], [background], replay, settings, params.simulate, 12, 6, 0)
    assert data.observed.shape == (18, 64) and data.n_real == 12 and data.n_replay == 6
    is_replay = np.all(data.observed == 5.0, axis=1)
    assert is_replay.sum() == 6
    assert np.all(data.baseline[is_replay] == 4.0)
    # shuffled: replay rows are not all at the end
    assert not np.all(is_replay[-6:])


def test_saturated_spectra_are_recognised():
    record, _ = _record()
    clipped_y = np.minimum(record.y, np.percentile(record.y, 90))
    clipped = dataclasses.replace(record, y=clipped_y)
    assert ft.saturated(clipped) and not ft.saturated(record)


def test_report_scores_every_method_and_draws_the_figures(tmp_path):
    records = [_record(seed=s, name=f"a/{s}.txt")[0] for s in range(3)]
    model = build_model("resunet", (4, 4, 4, 4, 4, 4), 7, 5)
    methods = {
        "resunet_before": ft.network_method(model, 128),
        "arpls": lambda x, y: np.full_like(y, np.min(y)),
    }
    baselines = ft.real_baselines(records, methods)
    assert [b.shape for b in baselines["arpls"]] == [(700,)] * 3
    table = ft.real_quality(records, baselines)
    assert set(table) == set(methods)
    assert "negative_fraction_mean" in table["arpls"]
    # a baseline at the minimum cuts nothing: no point below -3 sigma
    assert table["arpls"]["negative_fraction_mean"] == 0.0
    path = ft.plot_real(
        tmp_path / "r.png", records[0], {m: b[0] for m, b in baselines.items()}, "t"
    )
    assert path.stat().st_size > 10_000
    assert ft.plot_quality(tmp_path / "q.png", table).stat().st_size > 5_000


def test_simulated_errors_are_those_of_the_network(tiny):
    from pipeline.simulate import simulate

    test = simulate(tiny.simulate, 16, 3)
    model = build_model("resunet", (4, 4, 4, 4, 4, 4), 7, 5)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    errors = ft.simulated_errors(model, test.observed, test.baseline)
    # an all-zero network predicts the normalised minimum: the baseline error is then known
    span = np.ptp(test.observed, axis=1)
    expected = (test.observed.min(axis=1)[:, None] - test.baseline) / span[:, None]
    assert errors["mae"] == pytest.approx(np.abs(expected).mean(), rel=1e-4)
