"""benchmarks/train_speed.py on the tiny config: both steps, the stream, a whole training run."""

from benchmarks import train_speed
from pipeline.device import pick_device, resolve_precision


def test_train_speed_times_both_steps_and_a_whole_training_run(tiny):
    rows = train_speed.step_rates(tiny, batch=16, length=128, warmup=1, steps=2, repeats=1)
    precision = resolve_precision(pick_device(), "auto")
    assert [label for label, _, _ in rows] == [
        "plain fp32 eager",
        f"project step (auto: {precision})",
    ]
    assert all(rate > 0 and seconds > 0 for _, rate, seconds in rows)
    only = train_speed.step_rates(tiny, 16, 128, 1, 1, 1, variants=("project",))
    assert [label.split()[0] for label, _, _ in only] == ["project"]

    result = train_speed.full_training(tiny)
    assert result["samples"] == tiny.train.samples
    assert result["best_samples"] in (tiny.train.eval_every, tiny.train.samples)
    assert 0 < result["test_rmse"] < 1 and 0 < result["test_mae"] <= result["test_rmse"]


def test_training_rows_are_relative_to_the_plain_loop(tiny):
    sizes = {"warmup": 1, "steps": 1, "repeats": 1}
    rows = train_speed.training_rows(tiny, 16, 128, sizes)
    assert [r.section for r in rows] == ["train", "train"] and rows[0].ratio == 1.0
    assert rows[1].ratio == rows[1].rate / rows[0].rate and rows[1].batch == 16
    assert rows[0].note == "1 warm-up + 1 timed steps, best of 1"
    only = train_speed.training_rows(tiny, 16, 128, sizes, variants=("project",))
    assert only[0].ratio is None  # no plain loop to compare with


def test_stream_rows_time_simulation_per_worker_count(tiny):
    rows = train_speed.stream_rows(tiny, [0, 1], blocks=2, step_rate=100.0)
    assert [r.cores for r in rows] == ["in-process", "1 worker"]
    assert all(r.rate > 0 and r.section == "train" for r in rows)
    assert rows[0].note.endswith(f"{rows[0].rate / 100:,.1f}x the project step")
