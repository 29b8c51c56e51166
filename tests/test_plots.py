import subprocess
import sys

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline import plots

from .conftest import ROOT


def test_figure_is_on_an_agg_canvas(tmp_path):
    fig = plots.figure((4, 3))
    assert isinstance(fig, Figure) and isinstance(fig.canvas, FigureCanvasAgg)
    assert fig.get_layout_engine() is not None  # constrained layout by default
    ax = fig.subplots()
    ax.plot([0, 1], [1, 0])
    path = plots.save(fig, tmp_path / "sub" / "f.png", dpi=50)
    assert path == tmp_path / "sub" / "f.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.png"]  # no temporary left


def test_correction_draws_every_method(tmp_path):
    x = np.linspace(200, 1800, 300)
    y = 100 + np.exp(-(((x - 1000) / 10) ** 2)) * 50
    baselines = {"arpls": np.full_like(y, 100.0), "resunet": np.full_like(y, 99.0), "other": y}
    path = plots.correction(tmp_path / "c.png", x, y, baselines, "title", calibrated=False)
    assert path.stat().st_size > 5_000
    assert plots.method_style("other") == ("other", None, "-")
    assert plots.axis_label(False) == "pixel (uncalibrated axis)"


def test_masked_pixels_are_shaded_runs_and_gaps(tmp_path):
    masked = np.zeros(300, bool)
    masked[:4], masked[100:102], masked[-43:] = True, True, True
    assert plots.masked_spans(masked) == [(0, 4), (100, 102), (257, 300)]
    assert plots.masked_spans(None) == plots.masked_spans(np.zeros(5, bool)) == []
    x = np.linspace(200, 1800, 300)
    y = np.where(masked, 0.0, 100.0)
    baseline = np.where(masked, np.nan, 90.0)
    path = plots.correction(
        tmp_path / "m.png", x, y, {"baseline": baseline}, "t", True, masked=masked
    )
    assert path.stat().st_size > 5_000


def test_no_module_drawing_figures_imports_pyplot():
    code = (
        "import sys, pipeline.plots, pipeline.evaluate, pipeline.correct_files, pipeline.finetune\n"
        "print('matplotlib.pyplot' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"


def test_a_long_line_is_drawn_through_each_runs_minimum_and_maximum():
    x = np.arange(100_003.0)
    y = np.sin(x / 5000.0) + np.where(x % 997 == 0, 3.0, 0.0)  # spikes one point wide
    y[:40] = np.nan  # a masked run: a gap
    dx, dy = plots.drawn(x, y, buckets=1000)
    assert len(dx) <= 2 * 1000 + 2 and np.all(np.diff(dx) > 0)
    assert np.isnan(dy[0])
    spikes = x[(x % 997 == 0) & (x >= 40)]
    assert np.isin(spikes, dx).all()  # every one-point spike is drawn
    short = np.arange(8000.0)
    assert plots.drawn(short, short, buckets=1000)[1] is short  # short lines as they are
