"""The helpers of benchmarks/methods.py and the case helpers of benchmarks/common.py."""

import numpy as np
import pytest

from benchmarks import common, methods


def report(none=0.02, arpls=(0.03, 0.019), aspls=(0.025,)):
    """A score_benchmark report with the parts the helpers read."""
    summary = lambda v: {"rmse": {"mean": v}, "mae": {"mean": v / 2}}  # noqa: E731
    return {
        **{
            m: summary(v)
            for m, v in zip(methods.METHODS, (0.02, 0.018, 0.019, 0.021, 0.03, 0.04), strict=True)
        },
        "val_grid": {
            "refined_none": {"none": none},
            "refined_arpls": dict(zip(("3", "4"), arpls, strict=True)),
            "refined_aspls": dict(zip(("5",), aspls, strict=True)),
        },
        "lam": {
            "refined": {"method": "none", "log10_lam": None},
            "refined_forced": {"method": "arpls", "log10_lam": 4.0},
        },
        "n_test": 30,
    }


def test_forced_choice_leaves_none_out():
    assert methods.forced_choice(report(none=0.001)) == {
        "method": "arpls",
        "log10_lam": 4.0,
        "val_rmse": 0.019,
    }


def test_benchmark_rows_give_ratios_to_the_better_classical_method():
    (row,) = methods.benchmark_rows({"rruff": report()})
    assert row["benchmark"] == "rruff" and row["n"] == 30
    assert row["refined_ratio"] == pytest.approx(0.018 / 0.03)
    assert row["choice"] == "none" and row["forced"] == "arpls 4"


def test_case_row_applies_the_cases_rule():
    rng = np.random.default_rng(0)
    y = 100.0 + rng.normal(0, 1.0, 2000)
    good = common.case_row("flat", "exact", y, np.full_like(y, 100.0))
    assert good["passes"] == "yes" and abs(good["median"]) < 1
    high = common.case_row("flat", "high", y, np.full_like(y, 110.0))  # 10 sigma too high
    assert high["passes"] == "no" and high["negative"] > 90


def test_case_file_skips_the_source_and_the_cuts(tmp_path):
    for name in ("SOURCE.txt", "scan_min.txt", "scan.txt"):
        (tmp_path / name).write_text("1 2\n")
    assert common.case_file(tmp_path).name == "scan.txt"
    assert common.case_file(tmp_path / "empty") is None
