#!/usr/bin/env bash
# The `full` training recipe (params.yaml `profiles.full`) on this machine, standalone:
# Python with torch, numpy, scipy, pyyaml and tqdm is enough (no dvc, mlflow or prefect).
# Writes models/full.pt and reports/full_history.csv; resumes from .resume/full.pt if a run
# was interrupted. Extra options go to the train stage (`--no-progress`). DEVELOPERS.md.
# NPROC=N: N processes under torchrun (DDP, one per GPU: `NPROC=8 bash scripts/train_full.sh`),
# the same global batches and result as one process (docs/training.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
nproc=${NPROC:-1}
stage=(-m pipeline.stages.train --profile full --data data/simulated
  --out models/full.pt --history reports/full_history.csv --resume .resume/full.pt "$@")
# a process count that does not divide the batch: one line here, before any work
[ "$nproc" -le 1 ] || "$python" "${stage[@]}" --check-world "$nproc"
# the validation set, as the simulate stage writes it (skipped when already there)
[ -f data/simulated/val.npz ] || "$python" -m pipeline.stages.simulate --out data/simulated
start=$(date +%s)
if [ "$nproc" -gt 1 ]; then
  "$python" -m torch.distributed.run --standalone --nproc-per-node "$nproc" "${stage[@]}"
else
  "$python" "${stage[@]}"
fi
echo "full training finished in $(( $(date +%s) - start )) s on $nproc x $("$python" -c \
  'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU")')"
