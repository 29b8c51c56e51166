#!/usr/bin/env bash
# The `full` training recipe (params.yaml `profiles.full`) on this machine, standalone:
# Python with torch, numpy, scipy, pyyaml and tqdm is enough (no dvc, mlflow or prefect).
# Writes models/full.pt and reports/full_history.csv; resumes from .resume/full.pt if a run
# was interrupted. Extra options go to the train stage (`--no-progress`). DEVELOPERS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
# the validation set, as the simulate stage writes it (skipped when already there)
[ -f data/simulated/val.npz ] || "$python" -m pipeline.stages.simulate --out data/simulated
start=$(date +%s)
"$python" -m pipeline.stages.train --profile full --data data/simulated \
  --out models/full.pt --history reports/full_history.csv --resume .resume/full.pt "$@"
echo "full training finished in $(( $(date +%s) - start )) s on $("$python" -c \
  'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU")')"
