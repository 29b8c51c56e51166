"""The pure helpers of benchmarks/common.py: tables, options, rows, verdicts, the CPU clock."""

import math

import numpy as np
import pytest

from benchmarks import common


def test_format_table_aligns_and_marks_missing():
    rows = [{"name": "arpls", "rate": 1234.5, "ratio": 1.0}, {"name": "fast", "rate": 9.0}]
    cols = [("name", "method", ""), ("rate", "spectra/s", "{:,.0f}"), ("ratio", "x", "{:.2f}")]
    lines = common.format_table(rows, cols).splitlines()
    assert lines[0].split() == ["method", "spectra/s", "x"]
    assert lines[1].split() == ["arpls", "1,234", "1.00"]
    assert lines[2].split() == ["fast", "9", "-"]
    assert len({len(line) for line in lines}) == 1  # right-aligned numbers: equal widths


def test_section_table_shows_only_its_section():
    rows = [
        common.Row("simulate", "simulation per core", 512, 100, "1 (pinned)", 61234.0),
        common.Row("evaluate", "arpls", 512, 100, rate=1.0, seconds=100.0),
    ]
    text = common.section_table("simulate", rows)
    assert text.splitlines()[0] == common.TITLES["simulate"]
    assert "61,234" in text and "arpls" not in text


def test_metric_names_are_sanitised():
    name = common.metric_name("inference", "onnx student (v2).onnx", "L512", None, "rate")
    assert name == "inference.onnx_student_v2_.onnx.L512.rate"
    assert (
        common.metric_name("inference", "production (fp32)", 512) == "inference.production_fp32.512"
    )


def test_metrics_of_every_finite_figure_and_the_must_show_ones():
    rows = [common.Row("inference", "arpls", 512, 1024, rate=1000.0, ratio=1.0, rmse=math.nan)]
    metrics = common.metrics_of(rows, {"fast_vs_arpls": 2.5, "train_ratio": None})
    assert metrics == {
        "inference.arpls.L512.b1024.rate": 1000.0,
        "inference.arpls.L512.b1024.ratio": 1.0,
        "must.fast_vs_arpls": 2.5,
    }


def test_clock_prefers_max_mhz():
    assert common.parse_clock("CPU max MHz:  3800.0000\n", "cpu MHz\t\t: 2100.5\n") == (
        3800.0,
        "lscpu CPU max MHz",
    )
    mhz, source = common.parse_clock("Model name: x\n", "cpu MHz\t\t: 2100.5\n")
    assert mhz == 2100.5 and "current" in source
    with pytest.raises(ValueError):
        common.parse_clock("", "")


def test_must_show_figures_and_verdicts():
    rows = [
        common.Row("inference", common.FAST_LABEL, 512, 1024, ratio=2.5, rmse_ratio=1.04),
        common.Row("inference", common.FAST_LABEL, 512, 64, ratio=9.0, rmse_ratio=2.0),
        common.Row("train", "plain", rate=100.0, ratio=1.0),
        common.Row("train", "project", rate=180.0, ratio=1.8),
    ]
    figures = common.must_show(rows, 1.05)
    assert figures["fast_vs_arpls"] == 2.5 and figures["fast_rmse_ratio"] == 1.04
    assert figures["train_ratio"] == 1.8 and figures["sim_per_core"] is None
    text = "\n".join(common.must_show_lines(figures))
    assert "= 2.50 (>= 2): PASS; goal 3: FAIL" in text
    assert "= 1.040 (<= 1.05): PASS" in text
    assert "= 1.80 (>= 2): FAIL" in text
    assert "not measured (>= 50,000): n/a" in text
    assert common.verdict(math.nan, 1.0) == "n/a"
    assert common.verdict(1.0, 1.0, at_most=True) == "PASS"


def test_sizes_full_quick_and_overridden():
    full, quick = {"n": 100, "single_calls": 8}, {"n": 10, "single_calls": 2}
    parser = common.parser_for("Title.\n\nMore.", full, quick)
    assert common.chosen_sizes(parser.parse_args([]), full, quick) == full
    assert common.chosen_sizes(parser.parse_args(["--quick"]), full, quick) == quick
    args = parser.parse_args(["--quick", "--single-calls", "5"])
    assert common.chosen_sizes(args, full, quick) == {"n": 10, "single_calls": 5}
    assert parser.description == "Title."
    assert not hasattr(common.parser_for("Title.").parse_args([]), "quick")


def test_rows_and_notes_round_trip_through_json(tmp_path, capsys):
    say = common.Printout()
    say("a note\nand another")
    rows = [common.Row("evaluate", "arpls", 512, 7, "2 (fit_many)", 3.5, 2.0, rmse=0.01)]
    common.finish(say, rows, tmp_path / "out" / "rows.json")
    assert common.read_rows(tmp_path / "out" / "rows.json") == (rows, ["a note", "and another"])
    printed = capsys.readouterr().out
    assert printed.startswith("a note\nand another\n\n(e) classical evaluation")
    common.write_csv(tmp_path / "t.csv", rows)
    header, line = (tmp_path / "t.csv").read_text().splitlines()
    assert header.startswith("section,name,length,batch") and line.startswith("evaluate,arpls")


def test_best_rate_warms_up_then_keeps_every_block_of_the_last_run():
    calls = []

    def estimate(y):
        calls.append(len(y))
        return y * 2

    blocks = [np.ones((3, 4)), np.zeros((2, 4))]
    rate, out = common.best_rate(estimate, blocks, repeats=2)
    assert calls == [3, 3, 2, 3, 2]  # one warm-up call, then every block per repeat
    assert rate > 0 and out.shape == (5, 4) and out[:3].max() == 2
