"""MLflow: the store, run tracking, the ``resunet1d`` pyfunc, the promotion gate, alias moves.

The only package of the project that imports mlflow. Model versions move between the aliases
``challenger`` and ``production`` (never the deprecated stages), and every move is recorded on
the version it touches: when, why and by which command.

=============  =================================================================
``store``      the store's address, checks before use, the registry lock, lookups
``tracking``   one pipeline execution logged as a run, with its provenance
``pyfunc``     the registered model (ONNX Runtime inside) and its signature
``gate``       the promotion gate and the fast variant's gate
``aliases``    alias moves, promotion, rollback, registration
=============  =================================================================
"""

import mlflow  # noqa: F401  (benchmarks/speed.py reaches mlflow as registry.mlflow)

from pipeline.registry.aliases import (
    move_alias,
    promote,
    register_alias,
    register_and_gate,
    rollback,
)
from pipeline.registry.gate import (
    Decision,
    fast_gate,
    gate,
    production_checkpoint,
    reference_version,
    score_onnx,
    score_version,
)
from pipeline.registry.pyfunc import ResUNetBaseline, pip_requirements, signature_and_example
from pipeline.registry.store import (
    CHALLENGER,
    EXPERIMENT,
    FAST,
    MODEL_NAME,
    PRODUCTION,
    RegistryError,
    artifact_root,
    connect,
    experiment_id,
    find_version_by_tag,
    production_version,
    registry_lock,
    tracking_uri,
)
from pipeline.registry.tracking import (
    command_line,
    environment,
    file_digest,
    flatten,
    git_commit,
    log_pipeline_run,
)

_artifact_root = artifact_root  # benchmarks/speed.py's name for it

__all__ = [
    "CHALLENGER",
    "EXPERIMENT",
    "FAST",
    "MODEL_NAME",
    "PRODUCTION",
    "Decision",
    "RegistryError",
    "ResUNetBaseline",
    "artifact_root",
    "command_line",
    "connect",
    "environment",
    "experiment_id",
    "fast_gate",
    "file_digest",
    "find_version_by_tag",
    "flatten",
    "gate",
    "git_commit",
    "log_pipeline_run",
    "move_alias",
    "pip_requirements",
    "production_checkpoint",
    "production_version",
    "promote",
    "reference_version",
    "register_alias",
    "register_and_gate",
    "registry_lock",
    "rollback",
    "score_onnx",
    "score_version",
    "signature_and_example",
    "tracking_uri",
]
