#!/usr/bin/env bash
# The paper's whole experiment (PAPER.md §4) on the built-in lab: pretrain a standard and a forgetting model,
# adapt both to new languages (several adaptation budgets), finetune Baseline / BA / AFA on English
# instructions, evaluate all three, and write out/report/results.md with plots.
#
#   bash run.sh                    # the lab, one seed, CPU minutes
#   SEEDS=3 bash run.sh            # mean ± std over 3 seeds, and whether AFA − BA beats the seed spread
#   CONFIG=gpu_small bash run.sh   # GPU scale, on prepared real data (README: "Real data")
#   bash run.sh --force            # redo every stage (a plain re-run skips finished stages, resumes the rest)
# CONFIG may also be a path to a config file; OUT (default out), VOCAB and BUDGETS override the defaults.
set -euo pipefail
cd "$(dirname "$0")"
CONFIG=${CONFIG:-lab}
SEEDS=${SEEDS:-1}
PY=${PYTHON:-python}
MODE=--resume
case "${1:-}" in
  --force) MODE=--overwrite ;;
  "") ;;
  *) echo "usage: [CONFIG=lab|gpu_small] [SEEDS=N] bash run.sh [--force]" >&2; exit 2 ;;
esac
OUT=${OUT:-out}
CONFIG_FILE=config/$CONFIG.py
[[ $CONFIG == *.py ]] && CONFIG_FILE=$CONFIG && CONFIG=$(basename "$CONFIG" .py)
[[ -f $CONFIG_FILE ]] || { echo "error: no config file $CONFIG_FILE" >&2; exit 2; }
if [[ $CONFIG == gpu_small || $CONFIG == paper_* ]]; then
  DATA=${DATA:-$OUT/wikipedia}; VOCAB=${VOCAB:-32000}; BUDGETS=${BUDGETS:-"1000000 10000000 100000000"}
else
  DATA=${DATA:-$OUT/lab}; VOCAB=${VOCAB:-2048}; BUDGETS=${BUDGETS:-"5000 20000 100000 500000"}
fi
RUNS=$OUT/run/$CONFIG
TOK=$OUT/tokenizer/$CONFIG.tiktoken
START=$(date +%s)
stage() { echo; echo "=== $* ($(( $(date +%s) - START ))s) ==="; }

# 1. data: the lab is generated (seconds); real data must have been prepared
if [[ $CONFIG == lab && ( ! -f $DATA/manifest.json || $MODE == --overwrite ) ]]; then
  stage "generate the lab"
  $PY data/lab/prepare.py --out "$DATA"
fi
[[ -f $DATA/manifest.json ]] || { echo "error: $DATA/manifest.json not found; prepare the data first (README: Real data)" >&2; exit 1; }

# 2. the base vocabulary, trained on the pretraining languages
if [[ ! -f $TOK || $MODE == --overwrite ]]; then
  stage "train the base tokenizer ($VOCAB tokens)"
  mapfile -t PRETRAIN_TEXT < <($PY -c "import common; print('\n'.join(common.language_files('$DATA', common.group_languages('$DATA', 'pretraining'), 'train').values()))")
  $PY tokenizer.py train --input "${PRETRAIN_TEXT[@]}" --vocab_size $VOCAB --out "$TOK"
fi

MAIN_BUDGET=${BUDGETS##* }
for ((i = 0; i < SEEDS; i++)); do
  S=$RUNS/seed$i
  SEED=$((1337 + i))
  # 3. pretraining: standard, forgetting, and forgetting under [CHEN]'s per-episode embedding schedule
  stage "seed $SEED: pretraining"
  for variant in standard forgetting chen; do
    extra=()
    [[ $variant == standard ]] && extra=(--forget_every=0)
    [[ $variant == chen ]] && extra=(--emb_episode_lr)
    $PY train.py "$CONFIG_FILE" --seed=$SEED $MODE --data_dir="$DATA" --tokenizer="$TOK" --out_dir="$S/pretrain_$variant" "${extra[@]}"
  done
  # 4. adaptation of both pretrained models, at several budgets: the sample-efficiency curve
  stage "seed $SEED: adaptation"
  for kind in standard forgetting; do
    for T in $BUDGETS; do
      $PY adapt.py "$CONFIG_FILE" --seed=$SEED $MODE --init_from="$S/pretrain_$kind" --out_dir="$S/adapt_${kind}_$T" --adapt_tokens=$T
    done
  done
  # 5. English instruction finetuning: Baseline (not adapted), BA, AFA
  stage "seed $SEED: finetuning"
  $PY finetune.py "$CONFIG_FILE" --seed=$SEED $MODE --data_dir="$DATA" --init_from="$S/pretrain_standard" --out_dir="$S/finetune_Baseline"
  $PY finetune.py "$CONFIG_FILE" --seed=$SEED $MODE --data_dir="$DATA" --init_from="$S/adapt_standard_$MAIN_BUDGET" --out_dir="$S/finetune_BA"
  $PY finetune.py "$CONFIG_FILE" --seed=$SEED $MODE --data_dir="$DATA" --init_from="$S/adapt_forgetting_$MAIN_BUDGET" --out_dir="$S/finetune_AFA"
  # 6. evaluation: bits per byte, self-similarity, benchmarks, per language group
  if [[ ! -f $S/results.json || $MODE == --overwrite || $S/finetune_AFA/ckpt.pt -nt $S/results.json ]]; then
    stage "seed $SEED: evaluation"
    $PY evaluate.py "$CONFIG_FILE" --data_dir="$DATA" --models Baseline="$S/finetune_Baseline" BA="$S/finetune_BA" AFA="$S/finetune_AFA" --out="$S/results.json"
  fi
done

stage "report"
$PY report.py --runs "$RUNS" --out "$OUT/report"
echo "done in $(( $(date +%s) - START ))s: $OUT/report/results.md"
