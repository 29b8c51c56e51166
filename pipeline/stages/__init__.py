"""The DVC stages: one module per stage of ``dvc.yaml``, named after it.

Each module has a pure ``run(...)`` that takes and returns values and a ``main(argv)`` that
reads the stage's declared inputs and writes its declared outputs; every path is an argument
given by the stage's ``cmd`` in ``dvc.yaml``. A stage's DVC ``deps`` are its module and every
project module it imports (``tests/test_stage_deps.py``).
"""
