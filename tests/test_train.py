import dataclasses
import math

import numpy as np
import pytest
import torch

import pipeline.train as tr
from pipeline.simulate import simulate
from pipeline.stream import SimulatedStream
from pipeline.train import Recipe, learning_rate, recipe, to_tensors, train


@pytest.fixture(scope="module")
def val(tiny):
    va = simulate(tiny.simulate, tiny.simulate.n_val, seed=2)
    return to_tensors(va.observed, va.baseline)


def _stream(tiny, workers=0):
    return SimulatedStream(tiny.simulate, tiny.train.seed, workers)


def _weights(state):
    return torch.cat([v.flatten().float() for v in state.values()])


def test_targets_are_the_baseline_in_normalised_units(tiny):
    s = simulate(tiny.simulate, 8, seed=3)
    x, y = to_tensors(s.observed, s.baseline)
    assert x.shape == y.shape == (8, 1, tiny.simulate.length)
    assert torch.allclose(x.amin(-1), torch.zeros(8, 1)) and torch.allclose(
        x.amax(-1), torch.ones(8, 1)
    )
    # baseline <= observed where there is no band and little noise: targets live in [~0, ~1]
    assert y.min() > -0.5 and y.max() < 1.5


def test_schedule_warms_up_linearly_then_decays_on_a_cosine_to_zero():
    plan = Recipe(1000, 10, 2e-3, 0.0, 100, 0, "fp32", 1, warmup=0.1)
    at = {m: learning_rate(plan, m - 5, 10) for m in (5, 50, 100, 550, 1000)}  # batch middles
    assert at[5] == pytest.approx(2e-3 * 5 / 100)  # first step: small, positive
    assert at[50] == pytest.approx(1e-3)  # half-way through the warm-up
    assert at[100] == pytest.approx(2e-3)  # peak at the end of the warm-up
    assert at[550] == pytest.approx(1e-3)  # half-way through the cosine
    assert at[1000] == pytest.approx(0.0, abs=1e-12)
    rates = [learning_rate(plan, s, 10) for s in range(0, 1000, 10)]
    peak = int(np.argmax(rates))
    assert np.all(np.diff(rates[: peak + 1]) > 0) and np.all(np.diff(rates[peak:]) < 0)
    assert 0 < rates[-1] < 1e-6  # the last step still learns, barely
    none = dataclasses.replace(plan, warmup=0.0)
    assert learning_rate(none, 0, 10) == pytest.approx(2e-3 * (1 + math.cos(math.pi * 5e-3)) / 2)
    step = dataclasses.replace(plan, decay="step", step_every=300, gamma=0.5)
    assert [learning_rate(step, s, 10) for s in (0, 299, 300, 650)] == [2e-3, 2e-3, 1e-3, 5e-4]


def test_the_stream_depends_on_the_seed_only_not_on_workers_or_batch_size(tiny):
    def first(stream, n, batch, start=0):
        batches = stream.batches(start, batch)
        x = torch.cat([next(batches)[0] for _ in range(math.ceil(n / batch))])
        batches.close()
        return x[:n]

    block = _stream(tiny).block
    n = block + 100  # across a block boundary
    reference = first(_stream(tiny), n, 32)
    assert reference.shape == (n, 1, tiny.simulate.length)
    assert torch.equal(first(_stream(tiny, workers=2), n, 32), reference)
    assert torch.equal(first(_stream(tiny), n, 48), reference)
    resumed = first(_stream(tiny), 100, 25, start=block - 50)
    assert torch.equal(resumed, reference[block - 50 : block + 50])
    other = SimulatedStream(tiny.simulate, tiny.train.seed + 1)
    assert not torch.equal(first(other, 64, 32), reference[:64])
    assert len({tuple(x.flatten()[:8].tolist()) for x in reference}) == n  # all distinct


def test_training_consumes_exactly_the_budget_and_is_reproducible(tiny, val, monkeypatch):
    plan = dataclasses.replace(recipe(tiny.train), samples=150, eval_every=64)
    fed = []
    real_step = tr.train_step

    def counting_step(model, optimiser, xb, *rest):
        fed.append(len(xb))
        return real_step(model, optimiser, xb, *rest)

    monkeypatch.setattr(tr, "train_step", counting_step)
    state, history = train(tiny.model, plan, _stream(tiny), val, progress=False)
    assert sum(fed) == 150 and fed == [32, 32, 32, 32, 22]  # the last step cut short
    assert [e.samples for e in history] == [64, 128, 150]  # each evaluation after its step
    assert [e.epoch for e in history] == [1, 2, 3]
    assert all(np.isfinite([e.train_rmse, e.val_mae, e.val_rmse]).all() for e in history)
    again, _ = train(tiny.model, plan, _stream(tiny), val, progress=False)
    assert torch.equal(_weights(state), _weights(again))


def test_training_reduces_the_loss(tiny, val):
    plan = dataclasses.replace(recipe(tiny.train), samples=1024, eval_every=512)
    _, history = train(tiny.model, plan, _stream(tiny), val, progress=False)
    assert history[-1].train_rmse < history[0].train_rmse


def test_interrupted_training_resumes_to_the_same_weights(tiny, val, tmp_path, monkeypatch):
    full, full_history = train(tiny.model, tiny.train, _stream(tiny), val, progress=False)

    class Interrupted(Exception):
        pass

    real_save = tr._save_resume

    def save_then_stop(*args):
        real_save(*args)
        raise Interrupted  # as if killed right after the first evaluation's checkpoint

    resume = tmp_path / "resume.pt"
    monkeypatch.setattr(tr, "_save_resume", save_then_stop)
    with pytest.raises(Interrupted):
        train(tiny.model, tiny.train, _stream(tiny), val, resume_path=resume, progress=False)
    monkeypatch.setattr(tr, "_save_resume", real_save)
    assert torch.load(resume, weights_only=True)["seen"] == tiny.train.eval_every

    # resumed with simulation workers: the stream is the same, and continues where it stopped
    resumed, history = train(
        tiny.model, tiny.train, _stream(tiny, workers=1), val, resume_path=resume, progress=False
    )
    assert [e.samples for e in history] == [e.samples for e in full_history] == [256, 512]
    assert [e.val_mae for e in history] == [e.val_mae for e in full_history]
    assert torch.equal(_weights(resumed), _weights(full))


def test_resume_state_of_other_params_is_ignored(tiny, val, tmp_path):
    resume = tmp_path / "resume.pt"
    short = dataclasses.replace(tiny.train, samples=256)
    train(tiny.model, short, _stream(tiny), val, resume_path=resume, progress=False)
    other_seed = dataclasses.replace(tiny.train, seed=7)
    _, history = train(
        tiny.model, other_seed, _stream(tiny), val, resume_path=resume, progress=False
    )
    assert [e.samples for e in history] == [256, 512]  # started over


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "not a checkpoint"])
def test_a_corrupt_resume_file_is_set_aside_and_training_starts_over(
    tiny, val, tmp_path, capsys, damage
):
    resume = tmp_path / "train.pt"
    short = dataclasses.replace(tiny.train, samples=256)
    train(tiny.model, short, _stream(tiny), val, resume_path=resume, progress=False)
    whole = resume.read_bytes()
    resume.write_bytes(
        {
            "truncated": whole[: len(whole) // 2],
            "garbage": b"\x80\x04garbage" * 100,
            "empty": b"",
            "not a checkpoint": b"",
        }[damage]
    )
    if damage == "not a checkpoint":
        torch.save([1, 2, 3], resume)
    damaged = resume.read_bytes()
    _, history = train(tiny.model, short, _stream(tiny), val, resume_path=resume, progress=False)
    assert [e.samples for e in history] == [256]  # started over, and finished
    aside = tmp_path / "train.pt.corrupt"
    assert aside.read_bytes() == damaged  # kept for a look, out of the way
    (warning,) = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith(f"warning: the resume checkpoint {resume} cannot be read")
    assert warning.endswith(f"moved to {aside}; training starts over")


def test_fixed_tensors_train_in_shuffled_passes(tiny, val):
    """Fine-tuning's source: passes over fixed tensors, each ending in a shorter batch."""
    xy = to_tensors(*(lambda s: (s.observed, s.baseline))(simulate(tiny.simulate, 40, seed=4)))
    plan = Recipe(80, 32, 1e-3, 0.0, 40, 3, "fp32", 1, decay="step", step_every=40, gamma=0.5)
    _, history = train(tiny.model, plan, xy, val, progress=False)
    assert [(e.samples, e.lr) for e in history] == [(40, 1e-3), (80, 5e-4)]
