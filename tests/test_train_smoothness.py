"""train.smoothness: a second-difference penalty on the predicted baseline; 0 = today's loss."""

import dataclasses
import hashlib
import json

import pytest
import torch

import pipeline.train as tr
from pipeline.checkpoint import network_of
from pipeline.config import ConfigError, parse_params, to_dict
from pipeline.losses import second_difference, smooth_rmse
from pipeline.simulate import simulate
from pipeline.stream import SimulatedStream
from pipeline.train import recipe, rmse, to_tensors, train
from tests.conftest import tiny_params


@pytest.fixture(scope="module")
def sets(tiny):
    tr_set = simulate(tiny.simulate, 256, seed=5)
    va = simulate(tiny.simulate, 64, seed=6)
    return to_tensors(tr_set.observed, tr_set.baseline), to_tensors(va.observed, va.baseline)


def test_the_penalty_is_the_mean_squared_second_difference_under_the_root():
    torch.manual_seed(0)
    pred, target = torch.rand(4, 1, 50, requires_grad=True), torch.rand(4, 1, 50)
    d = pred[..., 2:] - 2 * pred[..., 1:-1] + pred[..., :-2]
    assert torch.allclose(second_difference(pred), d)
    expected = torch.sqrt(((pred - target) ** 2).mean() + 0.3 * (d**2).mean())
    got = smooth_rmse(pred, target, 0.3)
    assert torch.allclose(got, expected)
    assert torch.allclose(smooth_rmse(pred, target, 0.0), rmse(pred, target))
    got.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    # a straight line has no second difference: the penalty leaves it alone
    line = torch.linspace(0, 1, 50).expand(4, 1, 50)
    assert torch.allclose(smooth_rmse(line, target, 100.0), rmse(line, target))
    # under DDP the sums are those of the global batch: two equal halves give the same loss
    doubled = smooth_rmse(pred.detach(), target, 0.3, total=lambda sums: 2 * sums)
    assert torch.allclose(doubled, expected.detach())


def test_the_recipe_reads_train_smoothness(tiny):
    assert recipe(tiny.train).smoothness == 0.0
    smooth = parse_params(tiny_params(train={"smoothness": 2.5}))
    assert recipe(smooth.train).smoothness == 2.5


def test_zero_smoothness_trains_with_the_plain_rmse(tiny, sets, monkeypatch):
    calls = []

    def counted(pred, target):
        calls.append(1)
        return rmse(pred, target)

    monkeypatch.setattr(tr, "rmse", counted)
    monkeypatch.setattr(tr, "smooth_rmse", lambda *a, **k: pytest.fail("penalty used at 0"))
    plan = dataclasses.replace(recipe(tiny.train), samples=64)
    train(tiny.model, plan, sets[0], sets[1], progress=False)
    assert len(calls) == 2  # 64 spectra in batches of 32


def test_the_penalty_makes_the_predicted_baselines_smoother(tiny, sets):
    # 128 steps: enough for the batch-norm running statistics to settle (eval mode)
    plan = dataclasses.replace(recipe(tiny.train), samples=4096, eval_every=4096)
    rough = {}
    for w in (0.0, 30.0):
        state, history = train(
            tiny.model, dataclasses.replace(plan, smoothness=w), sets[0], sets[1], progress=False
        )
        net = network_of(tiny.model)
        net.load_state_dict(state)
        with torch.no_grad():
            pred = net.eval()(sets[1][0])
        rough[w] = second_difference(pred).square().mean().item()
        assert len(history) == 1 and history[0].val_rmse < 1.0
    assert rough[30.0] < 0.2 * rough[0.0]  # measured: 0.0007 against 0.0196


def test_resume_files_of_another_smoothness_are_not_reused_but_older_ones_are(tiny):
    stream = SimulatedStream(tiny.simulate, tiny.train.seed, 0)
    plan = recipe(tiny.train)
    tag = tr._resume_tag(tiny.model, plan, stream)
    assert tag != tr._resume_tag(tiny.model, dataclasses.replace(plan, smoothness=1.0), stream)
    se = dataclasses.replace(tiny.model, attention="se")
    assert tag != tr._resume_tag(se, plan, stream)
    # the tag of a run before the keys existed: none of them in the hashed params
    later = ("attention", "dropout", "mc_samples")
    old_model = {k: v for k, v in to_dict(tiny.model).items() if k not in later}
    old_plan = {k: v for k, v in dataclasses.asdict(plan).items() if k != "smoothness"}
    h = hashlib.sha256(json.dumps([old_model, old_plan]).encode())
    h.update(stream.identity())
    assert tag == h.hexdigest()


def test_a_negative_smoothness_is_refused():
    with pytest.raises(ConfigError, match=r"train\.smoothness: expected a value >= 0.0, got -1.0"):
        parse_params(tiny_params(train={"smoothness": -1.0}))


def test_under_ddp_the_penalised_loss_is_that_of_the_global_batch(tiny, tmp_path, monkeypatch):
    from .test_train_ddp import LOSS_TOL, _launch

    steps = 6
    plan = dataclasses.replace(
        recipe(tiny.train), samples=steps * 32, eval_every=32, precision="fp32", smoothness=30.0
    )
    va = simulate(tiny.simulate, tiny.simulate.n_val, seed=2)
    setup = (tiny.model, plan, tiny.simulate, to_tensors(va.observed, va.baseline))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # CPU and gloo in the spawned processes
    one = _launch(1, setup, tmp_path / "one.pt", tmp_path / "one")[0]
    two = _launch(2, setup, tmp_path / "two.pt", tmp_path / "two")
    losses = [[row["train_rmse"] for row in run["history"]] for run in (one, *two)]
    assert len(losses[0]) == steps and losses[1] == losses[2]
    assert max(abs(a - b) for a, b in zip(losses[0], losses[1], strict=True)) <= LOSS_TOL
    plain = _launch(
        1,
        (tiny.model, dataclasses.replace(plan, smoothness=0.0), *setup[2:]),
        tmp_path / "plain.pt",
        tmp_path / "plain",
    )[0]
    assert plain["history"][0]["train_rmse"] < losses[0][0]  # the penalty is in the loss
