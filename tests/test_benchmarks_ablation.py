"""benchmarks/ablation.py's pure helpers: the variant names and the mean over seeds."""

import pytest

from benchmarks import ablation


def test_a_variant_names_attention_and_smoothness_w_meaning_the_option():
    assert ablation.parse_variant("none:0", 10.0) == ("none", 0.0)
    assert ablation.parse_variant("se:W", 10.0) == ("se", 10.0)
    assert ablation.parse_variant("se:2.5", 10.0) == ("se", 2.5)
    assert ablation.parse_variant("se", 10.0) == ("se", 0.0)


def test_the_mean_row_averages_each_score_over_the_seeds_of_a_variant():
    rows = [
        {"variant": "se", "seed": "0", "simulated": 0.1, "train_rate": None, "params": 5},
        {"variant": "none", "seed": "0", "simulated": 0.3, "train_rate": 100.0, "params": 4},
        {"variant": "se", "seed": "1", "simulated": 0.2, "train_rate": 50.0, "params": 5},
    ]
    means = ablation.mean_rows(rows)
    assert [m["variant"] for m in means] == ["se", "none"]  # in the order first seen
    se = means[0]
    assert se["seed"] == "mean of 2" and se["simulated"] == pytest.approx(0.15)
    assert se["train_rate"] == 50.0  # a seed loaded without its rate does not count
    assert se["rruff"] is None and se["params"] == 5
