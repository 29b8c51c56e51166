import dataclasses
import os
from pathlib import Path

import pytest

from pipeline.config import load_params

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def params():
    """The committed params.yaml."""
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def tiny(params):
    """A tiny configuration: short spectra, few of them, a narrow network, one quick epoch."""
    sim = dataclasses.replace(params.simulate, length=128, n_train=256, n_val=64, n_test=64)
    model = dataclasses.replace(params.model, channels=(4, 6, 8, 10, 12, 14))
    train = dataclasses.replace(params.train, epochs=2, batch_size=32, threads=1)
    return dataclasses.replace(params, simulate=sim, model=model, train=train)
