"""The benchmark metric on blocks, score_benchmark (refined included), the evaluate_real stage."""

import numpy as np
import pytest

from pipeline.baselines import refined_baselines
from pipeline.evaluate import refined_choice, score_benchmark
from pipeline.metrics import benchmark_errors, block_errors
from pipeline.semireal import blocks
from pipeline.simulate import simulate


def test_the_metric_on_a_hand_made_case():
    x = np.arange(4.0)
    y1 = np.array([[0.0, 10.0, 0.0, 10.0]])  # range 10
    y2 = np.array([[0.0, 2.0, 0.0, 2.0], [5.0, 5.0, 5.0, 7.0]])  # ranges 2 and 2
    true1, true2 = np.zeros((1, 4)), np.zeros((2, 4))
    offsets = iter(
        [np.array([[1.0, 1.0, 1.0, 1.0]]), np.array([[0.2, -0.2, 0.2, -0.2], [0, 0, 0, 0.4]])]
    )

    def method(x_, y):
        return next(offsets)

    e = block_errors(method, [(x, y1, true1), (np.arange(4.0), y2, true2)])
    # spectrum 1: error 1 everywhere over range 10; 2: 0.2 over 2; 3: one point of 0.4 over 2
    assert np.allclose(e["rmse"], [0.1, 0.1, np.sqrt(0.2**2 / 4)])
    assert np.allclose(e["mae"], [0.1, 0.1, 0.2 / 4])
    offsets = iter([np.ones((1, 4)), np.zeros((2, 4))])
    mean = benchmark_errors(method, [(x, y1, true1), (x, y2, true2)])
    assert mean == pytest.approx({"rmse": 0.1 / 3, "mae": 0.1 / 3})  # a mean over spectra


@pytest.fixture(scope="module")
def bench(tiny):
    return blocks(simulate(tiny.simulate, 12, seed=21)), blocks(
        simulate(tiny.simulate, 20, seed=22)
    )


def test_score_benchmark_reports_every_method_with_lam_chosen_on_validation(tiny, bench):
    val, test_blocks = bench
    rng = np.random.default_rng(0)
    # a network a little off the truth: the true baseline plus a random tilt per spectrum
    answers = {}
    for _, y, true in (*val, *test_blocks):
        tilt = rng.normal(0, 0.02, (len(y), 1)) * np.linspace(-1, 1, y.shape[1])
        answers[y.tobytes()] = true + tilt * np.ptp(y, axis=1, keepdims=True)

    def network(x, y):
        return answers[y.tobytes()]

    report = score_benchmark(network, tiny.classical, tiny.simulate.length, val, test_blocks)
    for m in ("resunet", "refined", "arpls", "aspls"):
        assert report[m]["rmse"]["n"] == 20
    assert report["lam"]["arpls"] in tiny.classical.arpls.log10_lam
    refined_choice = report["lam"]["refined"]
    grid = report["val_grid"][f"refined_{refined_choice['method']}"]
    chosen = "none" if refined_choice["log10_lam"] is None else f"{refined_choice['log10_lam']:g}"
    assert grid[chosen] == min(min(g.values()) for k, g in report["val_grid"].items() if "_" in k)
    assert set(report["val_grid"]) == {
        "arpls",
        "aspls",
        "refined_none",
        "refined_arpls",
        "refined_aspls",
    }
    best = min(report[m]["rmse"]["mean"] for m in ("arpls", "aspls"))
    assert report["ratio"]["rmse_resunet_over_best_classical"] == pytest.approx(
        report["resunet"]["rmse"]["mean"] / best
    )
    assert report["resunet"]["rmse"]["mean"] < best  # this network is near the truth
    # refined measured as pipeline.baselines.refined_baselines defines it
    method = refined_choice["method"]
    settings = getattr(tiny.classical, method, None)
    estimate = refined_baselines(
        network, method, refined_choice["log10_lam"], settings, tiny.simulate.length
    )
    expected = benchmark_errors(estimate, test_blocks)
    assert report["refined"]["rmse"]["mean"] == pytest.approx(expected["rmse"])
    assert (report["n_val"], report["n_test"]) == (12, 20)


def test_refined_choice_takes_the_lowest_validation_rmse_none_included():
    grids = {
        "refined_none": {"none": 0.02},
        "refined_arpls": {"3": 0.03, "4": 0.019},
        "refined_aspls": {"5": 0.025},
    }
    assert refined_choice(grids) == {"method": "arpls", "log10_lam": 4.0}
    grids["refined_none"]["none"] = 0.01  # no correction beats every lam
    assert refined_choice(grids) == {"method": "none", "log10_lam": None}
    grids["refined_none"]["none"] = 0.019  # a tie: the network alone
    assert refined_choice(grids)["method"] == "none"


def test_score_benchmark_refined_is_the_network_when_no_correction_helps(tiny, bench):
    val, test_blocks = bench

    def network(x, y):  # exact: any classical fit of the residual (noise) only adds error
        return next(true for _, yy, true in (*val, *test_blocks) if yy is y)

    report = score_benchmark(network, tiny.classical, tiny.simulate.length, val, test_blocks)
    assert report["lam"]["refined"] == {"method": "none", "log10_lam": None}
    assert report["refined"]["rmse"]["mean"] == report["resunet"]["rmse"]["mean"]
