#!/usr/bin/env bash
# The one device check to run when a GPU is lent (about 5 minutes; prints one table): see bench/gpu_check.py.
#   bash bench/gpu_check.sh                       # CUDA: speed, resets under compile, resume, float16, finetune recompiles, sampling, masked scores, lab_gpu time
#   bash bench/gpu_check.sh --device=cpu --quick  # the same checks at toy size, to test the script
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" bench/gpu_check.py "$@"
