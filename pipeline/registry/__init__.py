"""MLflow: the store, run tracking, the ``resunet1d`` pyfunc, the promotion gate, alias moves.

The only package of the project that imports mlflow. Model versions move between the aliases
``challenger`` and ``production`` (never the deprecated stages), and every move is recorded on
the version it touches: when, why and by which command. The registry never guesses: a store
that fails raises :class:`RegistryError` (one line naming the store and the problem), never
an answer such as "no production version".

=============  =================================================================
``store``      the store's address, checks before use, schema creation, the registry
               lock, lookups that tell "missing" from "the store failed"
``tracking``   one pipeline execution logged as a run, with its provenance
``pyfunc``     the registered model (ONNX Runtime inside), its signature, request checks
``gate``       the promotion gate, the fast variant's gate, which variant ``correct`` runs
``aliases``    alias moves (atomic with their log entries), promotion, rollback, registration
=============  =================================================================
"""

from pipeline.registry.aliases import (
    gate_figures,
    move_alias,
    promote,
    register_alias,
    register_and_gate,
    rollback,
)
from pipeline.registry.gate import (
    BENCHMARKS,
    Decision,
    RealBenchmarks,
    fast_gate,
    fast_variant,
    gate,
    network_of,
    reference_of,
    score_all,
    score_onnx,
    score_version,
)
from pipeline.registry.pyfunc import (
    MAX_REQUEST_VALUES,
    RequestError,
    ResUNetBaseline,
    load_model,
    pip_requirements,
    signature_and_example,
)
from pipeline.registry.store import (
    CHALLENGER,
    EXPERIMENT,
    FAST,
    MODEL_NAME,
    PRODUCTION,
    RegistryError,
    alias_version,
    artifact_root,
    command_line,
    connect,
    experiment_id,
    find_version_by_tag,
    is_missing,
    model_version,
    production_version,
    registry_lock,
    store_name,
    tracking_uri,
)
from pipeline.registry.tracking import (
    checkpoint_of,
    environment,
    file_digest,
    flatten,
    git_commit,
    log_benchmark,
    log_pipeline_run,
    onnx_of,
)

__all__ = [
    "BENCHMARKS",
    "CHALLENGER",
    "EXPERIMENT",
    "FAST",
    "MAX_REQUEST_VALUES",
    "MODEL_NAME",
    "PRODUCTION",
    "Decision",
    "RealBenchmarks",
    "RegistryError",
    "RequestError",
    "ResUNetBaseline",
    "alias_version",
    "artifact_root",
    "checkpoint_of",
    "command_line",
    "connect",
    "environment",
    "experiment_id",
    "fast_gate",
    "fast_variant",
    "file_digest",
    "find_version_by_tag",
    "flatten",
    "gate",
    "gate_figures",
    "git_commit",
    "is_missing",
    "load_model",
    "log_benchmark",
    "log_pipeline_run",
    "model_version",
    "move_alias",
    "network_of",
    "onnx_of",
    "pip_requirements",
    "production_version",
    "promote",
    "reference_of",
    "register_alias",
    "register_and_gate",
    "registry_lock",
    "rollback",
    "score_all",
    "score_onnx",
    "score_version",
    "signature_and_example",
    "store_name",
    "tracking_uri",
]
