import numpy as np
import pytest
import torch

from pipeline.simulate import simulate
from pipeline.train import to_tensors, train


@pytest.fixture(scope="module")
def data(tiny):
    tr = simulate(tiny.simulate, tiny.simulate.n_train, seed=1)
    va = simulate(tiny.simulate, tiny.simulate.n_val, seed=2)
    return to_tensors(tr.observed, tr.baseline), to_tensors(va.observed, va.baseline)


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


def test_training_reduces_the_loss_and_is_reproducible(tiny, data):
    state, history = train(tiny.model, tiny.train, *data, progress=False)
    assert [e.epoch for e in history] == [1, 2]
    assert all(np.isfinite([e.train_rmse, e.val_mae, e.val_rmse]).all() for e in history)
    assert history[-1].train_rmse < history[0].train_rmse * 1.5
    again, _ = train(tiny.model, tiny.train, *data, progress=False)
    assert torch.equal(_weights(state), _weights(again))


def test_interrupted_training_resumes_to_the_same_weights(tiny, data, tmp_path, monkeypatch):
    import pipeline.train as tr

    full, _ = train(tiny.model, tiny.train, *data, progress=False)

    class Interrupted(Exception):
        pass

    real_save = tr._save_resume

    def save_then_stop(*args):
        real_save(*args)
        raise Interrupted  # as if killed right after epoch 1's checkpoint

    resume = tmp_path / "resume.pt"
    monkeypatch.setattr(tr, "_save_resume", save_then_stop)
    with pytest.raises(Interrupted):
        train(tiny.model, tiny.train, *data, resume_path=resume, progress=False)
    monkeypatch.setattr(tr, "_save_resume", real_save)
    assert resume.exists()

    resumed, history = train(tiny.model, tiny.train, *data, resume_path=resume, progress=False)
    assert [e.epoch for e in history] == [1, 2]
    assert torch.equal(_weights(resumed), _weights(full))


def test_resume_state_of_other_params_is_ignored(tiny, data, tmp_path):
    import dataclasses

    resume = tmp_path / "resume.pt"
    train(
        tiny.model,
        dataclasses.replace(tiny.train, epochs=1),
        *data,
        resume_path=resume,
        progress=False,
    )
    other_seed = dataclasses.replace(tiny.train, seed=7)
    _, history = train(tiny.model, other_seed, *data, resume_path=resume, progress=False)
    assert [e.epoch for e in history] == [1, 2]  # started over
