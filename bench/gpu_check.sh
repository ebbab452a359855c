#!/usr/bin/env bash
# The one device check to run when a GPU is lent: a verdict in rows, each with a threshold it can fail
# (bench/gpu_check.py's docstring lists them; bench/gpu_verdicts.py says why each threshold is what it is).
# Three groups of rows, each under 5 minutes, about 9 minutes in all on an H100 by estimate (no GPU has run it
# yet). Run them in this order, so that the first minutes of a borrowed GPU say the most:
#   bash bench/gpu_check.sh --rows=speed    # tokens/s and MFU against the floor, a reset under compile, kernels
#   bash bench/gpu_check.sh --rows=resume   # killed + resumed bit for bit, plain and under torchrun (DDP)
#   bash bench/gpu_check.sh --rows=lab      # lab_gpu pretraining + adapt, finetune under compile, sampling
#   bash bench/gpu_check.sh                 # all three in one call
#   bash bench/gpu_check.sh --device=cpu --quick  # the same rows at toy size, to test the script on a CPU
# It needs torch and requirements.txt less rustbpe, and no network: the lab is generated, the vocabulary is
# the committed bench/fixtures/lab.tiktoken.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" bench/gpu_check.py "$@"
