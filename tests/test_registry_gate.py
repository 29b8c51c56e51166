"""pipeline/registry/gate.py and the registration it decides, with two trained tiny models
on a real SQLite store: the promotion gate, promotion and rollback by hand, the fast variant's
gate against an explicit reference version, and fine-tuning's parent checkpoint."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from pipeline import registry
from pipeline.export import export_onnx
from pipeline.simulate import simulate
from pipeline.train import to_tensors, train

# the gate compares versions with each other; classical numbers no model here could lose to
EASY_CLASSICAL = {"arpls": {"rmse": 10.0, "mae": 10.0}, "aspls": {"rmse": 10.0, "mae": 10.0}}


@pytest.fixture(scope="module")
def store(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("mlflow")
    monkeypatch_module.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    return root


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def models(tiny, tmp_path_factory):
    """Two ONNX models: ``good`` (1,024 spectra) and ``worse`` (256 at a tiny learning rate)."""
    out = tmp_path_factory.mktemp("onnx")
    tr = simulate(tiny.simulate, tiny.simulate.n_train, seed=1)
    va = simulate(tiny.simulate, tiny.simulate.n_val, seed=2)
    data = to_tensors(tr.observed, tr.baseline), to_tensors(va.observed, va.baseline)
    plans = {
        "good": dataclasses.replace(tiny.train, samples=1024),
        "worse": dataclasses.replace(tiny.train, samples=256, lr=1e-5),
    }
    paths = {}
    for name, plan in plans.items():
        state, _ = train(tiny.model, plan, *data, progress=False)
        from pipeline.model import build_model

        net = build_model(tiny.model.arch, tiny.model.channels, 7, 5)
        net.load_state_dict(state)
        ckpt = out / f"{name}.pt"
        torch.save({"model": state}, ckpt)
        paths[name] = (out / f"{name}.onnx", ckpt)
        export_onnx(net, paths[name][0], length=tiny.simulate.length)
    return paths


@pytest.fixture(scope="module")
def benchmark(tiny):
    s = simulate(tiny.simulate, 64, seed=9)
    return {"observed": s.observed, "baseline": s.baseline}


def _register(client, models, name, benchmark, tiny, classical=EASY_CLASSICAL):
    onnx_path, ckpt = models[name]
    run_id, uri = registry.log_pipeline_run(
        client,
        params={"train": {"samples": 1024 if name == "good" else 256}},
        history=[{"epoch": 1, "train_rmse": 0.1, "val_mae": 0.1}],
        test_metrics={"test_resunet_rmse": 0.1},
        figures=onnx_path.parent / "no-figures",
        checkpoint=ckpt,
        onnx_path=onnx_path,
        digests={"onnx": registry.file_digest(onnx_path)},
        extra_files=[],
        run_name=name,
        grid=tiny.simulate.length,
    )
    with registry.registry_lock():
        return registry.register_and_gate(
            client,
            run_id=run_id,
            model_uri=uri,
            version_tags={"onnx_sha256": registry.file_digest(onnx_path)},
            benchmark=benchmark,
            classical=classical,
            command=f"test register {name}",
        )


@pytest.fixture(scope="module")
def client(store):
    return registry.connect(create=True)


def test_first_version_promoted_worse_one_refused_then_rollback(client, models, benchmark, tiny):
    first = _register(client, models, "good", benchmark, tiny)
    assert first.promoted and first.production is None
    assert registry.production_version(client) == first.version

    worse = _register(client, models, "worse", benchmark, tiny)
    assert worse.challenger["rmse"] > first.challenger["rmse"]  # it is worse, measured
    assert not worse.promoted
    assert f"production v{first.version}" in worse.reason
    assert registry.production_version(client) == first.version
    mv = client.get_model_version(registry.MODEL_NAME, worse.version)
    assert mv.tags["gate.decision"] == "refused"
    challenger = client.get_model_version_by_alias(registry.MODEL_NAME, "challenger")
    assert str(challenger.version) == worse.version

    # a person overrides the gate, then rolls back
    registry.promote(client, worse.version, "manual test", "test promote")
    assert registry.production_version(client) == worse.version
    old, new = registry.rollback(client, "worse after all", "test rollback")
    assert (old, new) == (worse.version, first.version)
    assert registry.production_version(client) == first.version
    log = json.loads(client.get_model_version(registry.MODEL_NAME, first.version).tags["alias_log"])
    assert [e["action"] for e in log if e["alias"] == "production"] == ["set", "removed", "set"]
    assert log[-1]["command"] == "test rollback" and log[-1]["reason"] == "worse after all"
    with pytest.raises(registry.RegistryError, match="nothing to roll back to"):
        registry.rollback(client, "again", "test")


def test_production_loads_and_equals_the_python_api(client, models, benchmark, tiny):
    model = registry.load_model(f"models:/{registry.MODEL_NAME}@production")
    x = np.linspace(400, 1800, tiny.simulate.length)
    y = benchmark["observed"][:3].astype(np.float64) * 3 + 100
    out = model.predict({"wavenumber": x, "intensity": y})
    direct = model.unwrap_python_model().model.baselines(x, y)
    assert np.allclose(out["baseline"], direct)
    assert np.allclose(out["corrected"], y - direct)


def test_gate_refuses_a_model_that_loses_to_the_classical_methods(client, models, benchmark, tiny):
    hard = {"arpls": {"rmse": 1e-6, "mae": 1e-6}, "aspls": {"rmse": 1e-6, "mae": 1e-6}}
    prod = registry.production_version(client)
    decision = registry.gate(client, prod, benchmark, hard)
    assert not decision.promoted and "arpls" in decision.reason


def test_fast_variant_is_registered_only_within_the_ratio_of_production(
    client, models, benchmark, tiny
):
    registry.connect()  # the tests above pointed mlflow at other stores
    prod = registry.production_version(client)
    grid = tiny.simulate.length
    refused = registry.fast_gate(client, models["worse"][0], grid, benchmark, 1.05, prod)
    assert not refused.promoted and "not within the 1.05 x allowed" in refused.reason
    assert refused.challenger["rmse"] > 1.05 * refused.production["rmse"]  # re-scored now
    assert refused.production_version == prod
    allowed = registry.fast_gate(client, models["worse"][0], grid, benchmark, 1000.0, prod)
    assert allowed.promoted and allowed.challenger == refused.challenger

    onnx_path, ckpt = models["worse"]
    run_id, uri = registry.log_pipeline_run(
        client,
        params={"student": {"channels": [4]}},
        history=[],
        test_metrics={"test_rmse": allowed.challenger["rmse"]},
        figures=None,
        checkpoint=ckpt,
        onnx_path=onnx_path,
        digests={"onnx": registry.file_digest(onnx_path)},
        extra_files=[],
        run_name="fast",
        grid=grid,
    )
    version = registry.register_alias(
        client,
        run_id=run_id,
        model_uri=uri,
        version_tags={"variant": "fast"},
        alias=registry.FAST,
        why="test",
    )
    fast = client.get_model_version_by_alias(registry.MODEL_NAME, registry.FAST)
    assert str(fast.version) == version and fast.tags["variant"] == "fast"
    assert registry.production_version(client) == prod  # the fast alias never moves production


def test_the_reference_is_the_version_given_not_the_live_alias(client, models, benchmark, tiny):
    registry.connect()
    prod = registry.production_version(client)
    other = next(v for v in _versions(client) if v != prod)
    grid = tiny.simulate.length
    decision = registry.fast_gate(client, models["worse"][0], grid, benchmark, 1000.0, other)
    assert decision.production_version == other and f"reference v{other}'s" in decision.reason
    with pytest.raises(
        registry.RegistryError, match=r"cannot load models:/resunet1d/99 .*not found"
    ):
        registry.fast_gate(client, models["worse"][0], grid, benchmark, 1000.0, "99")


def test_fine_tuning_starts_from_the_checkpoint_of_the_version_given(client, models, tmp_path):
    registry.connect()
    for version in _versions(client):
        run_id, path = registry.checkpoint_of(client, version, tmp_path / version)
        assert client.get_model_version(registry.MODEL_NAME, version).run_id == run_id
        assert path.read_bytes() in {ckpt.read_bytes() for _, ckpt in models.values()}
    with pytest.raises(registry.RegistryError, match="has no version 99"):
        registry.checkpoint_of(client, "99", tmp_path / "none")


def _versions(client):
    return {str(mv.version) for mv in client.search_model_versions(f"name='{registry.MODEL_NAME}'")}


# --- the real-reference benchmarks (issue 12): every benchmark scored, production re-scored


def _version_of(client, onnx_path):
    return registry.find_version_by_tag(client, "onnx_sha256", registry.file_digest(onnx_path))


@pytest.fixture(scope="module")
def real(tiny, models):
    """Two benchmarks: ``semireal`` (one block, true baselines) and ``rruff`` (spectra on
    their own non-uniform axes, one block each), plus ``rruff`` with the ``worse`` model's
    own baselines as the truth: the one benchmark on which ``worse`` wins."""
    from pipeline.inference import OnnxBaseline

    s = simulate(tiny.simulate, 24, seed=31)
    semireal = [(np.arange(s.observed.shape[1], dtype=np.float64), s.observed, s.baseline)]
    rruff = []
    for i, points in enumerate((150, 200, 173)):
        x = np.sort(np.random.default_rng(i).uniform(100, 1500, points))
        grid = np.linspace(100, 1500, s.observed.shape[1])
        on = lambda a: np.interp(x, grid, a.astype(np.float64))[None, :]  # noqa: B023, E731
        rruff.append((x, on(s.observed[i]), on(s.baseline[i])))
    worse = OnnxBaseline(models["worse"][0], grid=tiny.simulate.length)
    rigged = [(x, y, worse.baselines(x, y) + 1e-3 * np.ptp(y)) for x, y, _ in rruff]
    return {"semireal": semireal, "rruff": rruff}, {"semireal": semireal, "rruff": rigged}


def test_the_gate_refuses_a_challenger_worse_on_one_benchmark_and_promotes_one_no_worse(
    client, models, benchmark, real
):
    registry.connect()
    good, worse = (_version_of(client, models[m][0]) for m in ("good", "worse"))
    honest, rigged = real
    registry.promote(client, worse, "test: production is the worse model", "test")
    try:
        refused = registry.gate(client, good, benchmark, EASY_CLASSICAL, rigged)
        assert not refused.promoted
        assert refused.reason.startswith("rruff RMSE") and f"production v{worse}" in refused.reason
        assert "semireal" not in refused.reason  # better there, and on the simulated test
        figures = refused.benchmarks
        assert set(figures) == {"simulated", "semireal", "rruff"}
        for name in ("simulated", "semireal"):
            assert figures[name]["challenger"]["rmse"] < figures[name]["production"]["rmse"]
        assert figures["rruff"]["challenger"]["rmse"] > figures["rruff"]["production"]["rmse"]
        assert figures["simulated"]["challenger"] == refused.challenger

        promoted = registry.gate(client, good, benchmark, EASY_CLASSICAL, honest)
        assert promoted.promoted, promoted.reason
        assert "no worse than production on semireal, rruff" in promoted.reason
    finally:
        registry.promote(client, good, "test: back to the good model", "test")


def test_the_fast_gate_needs_the_ratio_on_every_benchmark(client, models, benchmark, tiny, real):
    registry.connect()
    good = _version_of(client, models["good"][0])
    grid = tiny.simulate.length
    honest, _ = real
    # the good model itself as the variant: ratio 1 on every benchmark
    same = registry.fast_gate(client, models["good"][0], grid, benchmark, 1.05, good, honest)
    assert same.promoted and "within the 1.05 x allowed on every benchmark" in same.reason
    assert {n: f["challenger"] for n, f in same.benchmarks.items()} == {
        n: f["production"] for n, f in same.benchmarks.items()
    }
    # truth = the good model's own baselines on one benchmark: the variant is far off there only
    from pipeline.inference import OnnxBaseline

    net = OnnxBaseline(models["good"][0], grid=grid)
    own = {"rruff": [(x, y, net.baselines(x, y)) for x, y, _ in honest["rruff"]]}
    equal = registry.fast_gate(client, models["good"][0], grid, benchmark, 1.05, good, own)
    assert equal.promoted  # the same network: 0 / 0 reads as equal
    worse = registry.fast_gate(client, models["worse"][0], grid, benchmark, 1e6, good, own)
    assert not worse.promoted and "rruff RMSE" in worse.reason and "= inf x" in worse.reason


def test_registering_logs_every_benchmark_figure(client, models, benchmark, tiny, real):
    registry.connect()
    honest, _ = real
    onnx_path, ckpt = models["good"]
    run_id, uri = registry.log_pipeline_run(
        client,
        params={},
        history=[],
        test_metrics={},
        figures=None,
        checkpoint=ckpt,
        onnx_path=onnx_path,
        digests={},
        extra_files=[],
        run_name="again",
        grid=tiny.simulate.length,
    )
    with registry.registry_lock():
        decision = registry.register_and_gate(
            client,
            run_id=run_id,
            model_uri=uri,
            version_tags={},
            benchmark=benchmark,
            classical=EASY_CLASSICAL,
            command="test register again",
            real=honest,
        )
    assert not decision.promoted  # the production model again: not better on the simulated test
    logged = client.get_run(run_id).data.metrics
    tags = client.get_model_version(registry.MODEL_NAME, decision.version).tags
    for name in ("simulated", "semireal", "rruff"):
        for side in ("", "_production"):
            key = f"gate_{name}{side}_rmse"
            assert key in logged and key in tags
    assert logged["gate_rruff_rmse"] == pytest.approx(
        decision.benchmarks["rruff"]["challenger"]["rmse"]
    )
