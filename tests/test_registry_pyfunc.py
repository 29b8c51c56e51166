"""pipeline/registry/pyfunc.py: the served model checks every request, refuses bad ones with
HTTP 400 and one line, and answers in the order of the request's own axis (real HTTP)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import registry
from pipeline.export import export_onnx
from pipeline.inference import OnnxBaseline
from pipeline.model import ResUNet1D
from pipeline.registry import pyfunc

from .conftest import ROOT, log_onnx_run

LENGTH = 128


def spectra(n=2, length=LENGTH, seed=0):
    """Smooth backgrounds with two bands, on an increasing axis: (x (L,), y (N, L))."""
    rng = np.random.default_rng(seed)
    x = np.linspace(400.0, 1800.0, length)
    bands = 300 * np.exp(-(((x - 1000) / 8) ** 2)) + 150 * np.exp(-(((x - 1600) / 12) ** 2))
    y = [1000 + a * np.exp(-2 * (x - x[0]) / 1400) + bands for a in rng.uniform(200, 900, n)]
    return x, np.stack(y)


def bad_requests():
    """Each bad request the served model must refuse, with a word its message must hold.

    The words are check_spectra's, for lists given to ``predict`` as they are; over HTTP,
    MLflow's parser has turned JSON into float arrays first (null into NaN), or refused text
    and rows of different lengths itself, with a 400 and one line too.
    """
    x, y = (a.tolist() for a in spectra())
    swapped = x[:5] + [x[6], x[5]] + x[7:]
    return {
        "NaN": (
            {"wavenumber": x, "intensity": [y[0][:9] + [float("nan")] + y[0][10:], y[1]]},
            "NaN",
        ),
        "Inf": (
            {"wavenumber": x, "intensity": [y[0], y[1][:3] + [float("inf")] + y[1][4:]]},
            "Inf",
        ),
        "NaN axis": ({"wavenumber": x[:-1] + [float("nan")], "intensity": y}, "NaN"),
        "unsorted axis": ({"wavenumber": swapped, "intensity": y}, "not monotonic"),
        "duplicated axis": ({"wavenumber": x[:6] + [x[5]] + x[7:], "intensity": y}, "duplicated"),
        "mismatched lengths": ({"wavenumber": x, "intensity": [r[:-1] for r in y]}, "does not fit"),
        "rows of different lengths": ({"wavenumber": x, "intensity": [y[0], y[1][:-1]]}, "rows"),
        "text": ({"wavenumber": x, "intensity": [y[0][:3] + ["abc"] + y[0][4:], y[1]]}, "abc"),
        "null": ({"wavenumber": x, "intensity": [y[0], y[1][:3] + [None] + y[1][4:]]}, "None"),
        "too short": ({"wavenumber": x[:8], "intensity": [r[:8] for r in y]}, "fewer than"),
    }


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    """An untrained tiny ResUNet-1D: fast, and any baseline it draws is a valid test."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    export_onnx(ResUNet1D(channels=(4, 6, 8, 10, 12, 14)), path, length=LENGTH)
    return path


@pytest.fixture(scope="module")
def model(onnx_model):
    """The pyfunc, as the server loads it (``load_context`` needs only the ONNX file)."""
    m = pyfunc.ResUNetBaseline(grid=LENGTH)
    m.model = OnnxBaseline(onnx_model, grid=LENGTH)
    return m


# --------------------------------------------------------------------- the Python API


@pytest.mark.parametrize("name", list(bad_requests()))
def test_each_bad_request_is_refused_with_one_line(model, name):
    request, word = bad_requests()[name]
    with pytest.raises(registry.RequestError) as caught:
        model.predict(None, request)
    message = caught.value.message
    assert message.startswith("request: ") and "\n" not in message and word in message
    assert caught.value.get_http_status_code() == 400


def test_a_request_without_the_fields_is_refused(model):
    with pytest.raises(registry.RequestError, match="'wavenumber'"):
        model.predict(None, {"intensity": np.ones((1, LENGTH))})


def test_requests_over_the_size_cap_are_refused(model, monkeypatch):
    x, y = spectra(n=3)
    monkeypatch.setattr(pyfunc, "MAX_REQUEST_VALUES", x.size + y.size - 1)
    with pytest.raises(registry.RequestError, match="more than the 511 allowed"):
        model.predict(None, {"wavenumber": x, "intensity": y})
    monkeypatch.setattr(pyfunc, "MAX_REQUEST_VALUES", x.size + y.size)
    model.predict(None, {"wavenumber": x, "intensity": y})


def test_the_message_stays_one_line_when_the_server_rewrites_it():
    error = registry.RequestError("request: duplicated axis value x = 3")
    error.message = f"Failed to predict data '{np.ones(2000)}'. \nError: {error.message}"
    assert error.message == "request: duplicated axis value x = 3"
    assert json.loads(error.serialize_as_json())["message"] == error.message


def test_a_descending_axis_is_answered_in_its_own_order(model):
    x, y = spectra()
    up = model.predict(None, {"wavenumber": x, "intensity": y})
    down = model.predict(None, {"wavenumber": x[::-1], "intensity": y[:, ::-1]})
    assert np.allclose(down["baseline"], up["baseline"][:, ::-1], rtol=1e-12, atol=1e-12)
    assert np.allclose(down["corrected"], y[:, ::-1] - down["baseline"], rtol=1e-12, atol=1e-12)
    one = model.predict(None, {"wavenumber": x[::-1], "intensity": y[0, ::-1]})  # (L,)
    assert np.allclose(one["baseline"], up["baseline"][:1, ::-1], rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------- over real HTTP


@pytest.fixture(scope="module")
def server(onnx_model, tmp_path_factory):
    """``mlflow models serve`` of the logged pyfunc; yields its /invocations URL."""
    root = tmp_path_factory.mktemp("served")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    client = registry.connect(uri, create=True)
    _, model_uri = log_onnx_run(client, onnx_model, LENGTH, "serving test")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, (root / "server.log").read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/invocations", model_uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the CLI and the uvicorn worker it started
        proc.wait(timeout=30)
        log.close()
        mp.undo()


def post(url: str, body: str) -> tuple[int, str]:
    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_serving_answers_like_the_python_api_in_the_request_order(server):
    url, model_uri = server
    x, y = spectra()
    direct = registry.load_model(model_uri).predict({"wavenumber": x, "intensity": y})
    for order in (slice(None), slice(None, None, -1)):  # increasing, then as WiRE: decreasing
        request = {"wavenumber": x[order].tolist(), "intensity": y[:, order].tolist()}
        status, body = post(url, json.dumps({"inputs": request}))
        assert status == 200, body
        answer = json.loads(body)["predictions"]
        for key in ("baseline", "corrected"):
            expected = direct[key][:, order]
            assert np.allclose(answer[key], expected, rtol=1e-9, atol=1e-9), key


def test_serving_refuses_each_bad_request_with_a_4xx_and_no_trace(server):
    url, _ = server
    cases = {k: v[0] for k, v in bad_requests().items()}
    bodies = {name: json.dumps({"inputs": request}) for name, request in cases.items()}
    bodies["no intensity"] = json.dumps({"inputs": {"wavenumber": [1.0, 2.0]}})
    bodies["not JSON"] = "{wavenumber: 1"
    server_paths = [str(ROOT), sys.prefix, "/tmp/", "site-packages"]
    for name, body in bodies.items():
        status, answer = post(url, body)
        assert 400 <= status < 500, (name, status, answer)
        message = json.loads(answer)["message"]
        assert "Traceback" not in answer and 'File "' not in answer, (name, answer)
        assert not [p for p in server_paths if p in answer], (name, answer)
        if name in cases:  # checked by check_spectra (or refused by MLflow's parser): one line
            assert "\n" not in message, (name, message)
