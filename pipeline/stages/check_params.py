"""Stage ``check_params``: params.yaml checked whole, before any other stage runs.

The root of the pipeline: every other stage of ``dvc.yaml`` lists this stage's output among its
deps, so ``dvc repro`` runs it first whenever ``params.yaml`` changed, and a bad value, a key
given twice or a bad profile (:mod:`pipeline.config`) stops the run here, before DVC deletes
the outputs of any stage whose params changed (it deletes a stage's outputs just before
running that stage's command). The output is the same for every valid file, so a change of
params re-runs only the stages that read the changed keys.
"""

from __future__ import annotations

import sys

from pipeline.files import write_json
from pipeline.stages._common import arguments, params_of, script

# what the output says, the same for every valid params.yaml (its digest would re-run all)
VALID = {"params": "valid", "checked": "every section and profile (pipeline/config.py)"}


def main(argv: list[str] | None = None) -> int:
    """Check params.yaml; write the (constant) record that it is valid."""
    args = arguments(__doc__, "check-params", "out").parse_args(argv)
    params_of(args)  # raises ConfigError naming the key
    write_json(args.out, VALID)
    print(f"{args.params}: valid")
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "check_params"))
