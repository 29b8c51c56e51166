import dataclasses

import numpy as np
import pytest
from scipy import stats

from pipeline.config import BASELINE_FAMILIES, PEAK_SHAPES
from pipeline.simulate import SpectrumSet, _standard_normal, simulate


@pytest.fixture(scope="module")
def spectra(params):
    return simulate(params.simulate, 3000, seed=11)


def test_shapes_and_dtypes(spectra, params):
    n, length = 3000, params.simulate.length
    for name in ("observed", "baseline", "peaks"):
        arr = getattr(spectra, name)
        assert arr.shape == (n, length) and arr.dtype == np.float32
        assert np.isfinite(arr).all()
    assert spectra.read_noise.shape == spectra.family.shape == (n,)


def test_same_params_and_seed_give_byte_identical_arrays(params, spectra):
    again = simulate(params.simulate, 3000, seed=11)
    for name in ("observed", "baseline", "peaks", "read_noise", "family"):
        assert getattr(again, name).tobytes() == getattr(spectra, name).tobytes()
    other = simulate(params.simulate, 3000, seed=12)
    assert not np.array_equal(other.observed, spectra.observed)


def test_components_add_up_to_the_observed_spectrum(params):
    # observed = baseline + peaks + noise (+ a cosmic-ray spike on a few spectra); without
    # the flat level, whose shot noise is larger (tests/test_simulate_tall.py checks it)
    sim = params.simulate
    sim = dataclasses.replace(sim, intensity=dataclasses.replace(sim.intensity, flat_fraction=0))
    spectra = simulate(sim, 3000, seed=11)
    scale = np.ptp(spectra.baseline, axis=1)  # the baseline spans exactly one scale unit
    residual = (spectra.observed - spectra.baseline - spectra.peaks) / scale[:, None]
    spiky = np.abs(residual).max(axis=1) > 0.5
    assert spiky.mean() < 0.1
    # noise std is at least the read noise and stays small
    std = residual[~spiky].std(axis=1)
    assert np.all(std >= 0.8 * spectra.read_noise[~spiky] - 1e-3)
    assert np.median(std) < 0.05


def test_bands_are_non_negative_and_baselines_span_one_scale_unit(spectra, params):
    assert (spectra.peaks >= 0).all()
    low = spectra.baseline.min(axis=1)
    span = np.ptp(spectra.baseline, axis=1)
    top_band = spectra.peaks.max(axis=1) / span
    assert (span > 0).all() and np.isfinite(low).all()
    peaks = params.simulate.peaks
    tallest = peaks.tall_ratio[1] if peaks.tall_fraction else peaks.ratio[1]
    assert top_band.min() >= peaks.ratio[0] * 0.99 and top_band.max() <= tallest * 1.01
    # the tall regime's share of spectra above the usual ratio range
    share = np.mean(top_band > peaks.ratio[1] * 1.01)
    assert share <= peaks.tall_fraction + 0.03


def test_every_baseline_family_and_band_shape_appears(params, spectra):
    counts = np.bincount(spectra.family, minlength=len(BASELINE_FAMILIES))
    weights = params.simulate.baseline.families
    weighted = np.array([weights.get(f, 0) > 0 for f in BASELINE_FAMILIES])
    assert (counts[weighted] > 0).all() and (counts[~weighted] == 0).all()


@pytest.mark.parametrize("family", BASELINE_FAMILIES)
def test_each_family_alone_is_smooth(params, family):
    sim = dataclasses.replace(
        params.simulate,
        baseline=dataclasses.replace(params.simulate.baseline, families={family: 1}),
    )
    s = simulate(sim, 200, seed=3)
    assert (s.family == BASELINE_FAMILIES.index(family)).all()
    b = (s.baseline - s.baseline.min(1, keepdims=True)) / np.ptp(s.baseline, axis=1)[:, None]
    # smooth: second differences are tiny compared with the unit range
    assert np.abs(np.diff(b, 2, axis=1)).max() < 0.05


@pytest.mark.parametrize("shape", PEAK_SHAPES)
def test_single_band_shape_and_width(params, shape):
    sim = dataclasses.replace(
        params.simulate,
        peaks=dataclasses.replace(
            params.simulate.peaks, shapes={shape: 1}, count=(1, 1), width=(20.0, 20.001)
        ),
        intensity=dataclasses.replace(
            params.simulate.intensity, scale=(1.0, 1.0001), offset=(0, 1e-6)
        ),
    )
    s = simulate(sim, 50, seed=5)
    p = s.peaks / s.peaks.max(axis=1, keepdims=True)
    centre = p.argmax(axis=1)
    inside = (centre > 40) & (centre < sim.length - 40)
    # full width at half maximum is the drawn 20 points (to grid resolution)
    fwhm = (p[inside] >= 0.5).sum(axis=1)
    assert np.all(np.abs(fwhm - 20) <= 2)
    if shape == "hann":  # compact: zero beyond one FWHM of the centre
        far = np.abs(np.arange(sim.length)[None, :] - centre[inside, None]) > 21
        assert np.all(p[inside][far] == 0)
    if shape == "lorentzian":  # long tails
        assert np.all(p[inside][:, [0, -1]].max(axis=1) > 1e-4)


def test_standard_normal_draws():
    rng = np.random.default_rng(0)
    z = _standard_normal(rng, (400, 511)).ravel()
    assert z.dtype == np.float32 and z.size == 400 * 511
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert stats.kstest(z[:50_000], "norm").pvalue > 1e-3


def test_save_and_load_round_trip(spectra, tmp_path):
    path = tmp_path / "set.npz"
    spectra.save(path)
    back = SpectrumSet.load(path)
    for name in ("observed", "baseline", "peaks", "read_noise", "family"):
        assert np.array_equal(getattr(back, name), getattr(spectra, name))
