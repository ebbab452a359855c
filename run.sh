#!/usr/bin/env bash
# The paper's whole experiment (docs/method.md) on the built-in lab: pretrain a standard and a forgetting model,
# adapt both to new languages (several adaptation budgets), finetune Baseline / BA / AFA on English
# instructions, evaluate all three, and write out/report/results.md with plots. Beside them the control: a body
# never pretrained (the same shape and initialisation), adapted, finetuned and evaluated as BA and AFA are
# (Control): what the adapting text and the recipe give without any pretrained skill.
#
#   bash run.sh                    # the lab, one seed (1337), CPU minutes
#   SEEDS=5 bash run.sh            # seeds 1337..1341, each its own lab world: paired t-tests over seeds, Holm-corrected
#   SEED0=11 bash run.sh           # another first seed: development runs use seeds 1..99, never the reported 1337..
#   CONFIG=lab_gpu bash run.sh     # a larger lab (3.9M parameters, 4x the text) for one GPU (hours on a CPU)
#   CONFIG=gpu_small bash run.sh   # GPU scale, on prepared real data (README: "Real data")
#   bash run.sh --force            # redo every stage (a plain re-run skips finished stages, resumes the rest)
#   VARIANTS=keephead bash run.sh  # also the keep-head expansion recipe (old head rows kept, frozen) at the largest
#                                  # budget, finetuned and evaluated as BA_keephead and AFA_keephead (not in
#                                  # the default: 2 more large adaptations, finetunings and evaluations)
#   VARIANTS=splice bash run.sh    # also [CHEN]'s transfer protocol: each pretrained body finetuned on English
#                                  # alone (embeddings and head frozen), then given the embeddings and head of its
#                                  # largest keep-head adaptation (splice.py); evaluated as BA_splice and AFA_splice
#   VARIANTS=chen bash run.sh      # also forgetting under [CHEN]'s per-episode embedding LR (pretrain_chen; only
#                                  # plotted: the pretraining loss and the recovery after each reset)
# CONFIG may also be a path to a config file, and OVERRIDES a second one read after it (e.g. a small model for a
# quick check of a GPU config); OUT (default out), DATA (one prepared corpus for every seed; by default each seed
# of the lab generates its own), VOCAB, BUDGETS (adaptation tokens) and JOBS (runs at once; default: one per CPU
# core for the lab, 1 at GPU scale) override the defaults.
set -euo pipefail
cd "$(dirname "$0")"
# the command as given, with every setting that changes the results, written at the top of the report
MADE_BY=$(for v in CONFIG OVERRIDES SEEDS SEED0 VARIANTS BUDGETS DATA VOCAB; do
  if [[ -n ${!v:-} ]]; then printf '%s=%q ' "$v" "${!v}"; fi; done)"bash run.sh${1:+ $1}"
CONFIG=${CONFIG:-lab}
SEEDS=${SEEDS:-1}
SEED0=${SEED0:-1337}  # the reported runs' first seed; development runs choose theirs in 1..99 (docs/method.md)
PY=${PYTHON:-python}
MODE=--resume
case "${1:-}" in
  --force) MODE=--overwrite ;;
  "") ;;
  *) echo "usage: [CONFIG=lab|lab_gpu|gpu_small] [SEEDS=N] [VARIANTS='keephead splice chen'] bash run.sh [--force]" >&2; exit 2 ;;
esac
OUT=${OUT:-out}
CONFIG_FILE=config/$CONFIG.py
[[ $CONFIG == *.py ]] && CONFIG_FILE=$CONFIG && CONFIG=$(basename "$CONFIG" .py)
[[ -f $CONFIG_FILE ]] || { echo "error: no config file $CONFIG_FILE" >&2; exit 2; }
CONFIG_FILES=("$CONFIG_FILE")
if [[ -n ${OVERRIDES:-} ]]; then
  [[ -f $OVERRIDES ]] || { echo "error: OVERRIDES: no config file $OVERRIDES" >&2; exit 2; }
  CONFIG_FILES+=("$OVERRIDES")
fi
# Independent runs share the machine: up to JOBS at once, each with an equal share of the CPU threads (tiny
# models train faster as two 1-thread processes than as one 2-thread process). A run's output is appended
# to <its out_dir>.log (a re-run adds to it); a failed run stops the whole script and prints the end of its log.
# (nproc counts OMP_NUM_THREADS as the cores; the runs' thread count is set from CORES below, not the other way)
CORES=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 1)  # sysctl: macOS
LAB=""  # a lab config: each seed generates its own lab world, unless DATA names one lab for every seed
if [[ $CONFIG == gpu_small || $CONFIG == paper_* ]]; then
  DATA=${DATA:-$OUT/wikipedia}; VOCAB=${VOCAB:-32000}; BUDGETS=${BUDGETS:-"1000000 10000000 100000000"}; JOBS=${JOBS:-1}
  TOKENIZER_SAMPLE=(--max_bytes 500000000)  # rustbpe's memory grows with the distinct words: train on an even sample
else
  LAB=yes; LAB_MB=1  # the lab's data: 1 MB of text per language; the larger lab_gpu has its own, 4 MB
  if [[ $CONFIG == lab_gpu ]]; then LAB_MB=4; fi
  VOCAB=${VOCAB:-2048}; BUDGETS=${BUDGETS:-"5000 20000 100000 500000"}; JOBS=${JOBS:-$CORES}
  TOKENIZER_SAMPLE=()
fi
for n in "JOBS=$JOBS" "SEEDS=$SEEDS" "SEED0=$SEED0" $(printf 'BUDGETS=%s ' $BUDGETS); do
  [[ ${n#*=} =~ ^[1-9][0-9]*$ ]] || { echo "error: ${n%%=*}: '${n#*=}' is not a positive whole number" >&2; exit 2; }
done
VARIANTS=${VARIANTS:-}
for v in $VARIANTS; do
  [[ $v == keephead || $v == splice || $v == chen ]] || { echo "error: VARIANTS: unknown variant '$v' (known: keephead, splice, chen)" >&2; exit 2; }
done
# [AFA]'s adaptation recipe, read literally: a fresh head of all rows, learned with the new embedding rows.
# The variant keeps the pretrained head rows (frozen) and learns only the new ones. Both spelled out here so
# that run.sh does not depend on adapt.py's defaults.
EXPAND=(--mode=expand --head=fresh)
KEEPHEAD=(--mode=expand --head=keep)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( CORES / JOBS > 0 ? CORES / JOBS : 1 ))}
RUNS=$OUT/run/$CONFIG
TOK=$OUT/tokenizer/$CONFIG.tiktoken
START=$(date +%s)
stage() { echo; echo "=== $* ($(( $(date +%s) - START ))s) ==="; }

manifest() {  # manifest DATA_DIR EXPRESSION: the items of a Python expression over the manifest m (g: a group's
  # languages), one a line; nothing at all if there are none (mapfile would read one empty line as an item)
  $PY -c "import sys; from pipeline.documents import read_manifest; m = read_manifest(sys.argv[1])
g = lambda name: m.get('groups', {}).get(name, []); items = [str(x) for x in $2]
print('\n'.join(items)) if items else None" "$1"
}
# 1. data and 2. the base vocabulary: prepare DATA_DIR TOKENIZER SEED. The lab is generated (seconds), from the seed:
# every seed draws its own world, so that a verdict over seeds covers worlds, not one world (docs/method.md,
# "Statistics"). Real data must have been prepared, once for every seed. A lab made by an older data/lab/prepare.py
# is not silently reused: every stage after it would resume on the old text and tasks
prepare() {
  local data=$1 tok=$2 seed=$3
  if [[ $LAB && -f $data/manifest.json && $MODE != --overwrite ]]; then
    made=$(manifest "$data" "[str(m.get('version'))]")
    current=$(sed -n 's/^VERSION = \([0-9]*\).*/\1/p' data/lab/prepare.py)
    if [[ $made != "$current" ]]; then
      echo "error: $data was made by lab version $made, and data/lab/prepare.py now makes version $current;" \
           "bash run.sh --force redoes everything on a new lab (or set OUT to a new folder)" >&2
      exit 1
    fi
  fi
  if [[ $LAB && ( ! -f $data/manifest.json || $MODE == --overwrite ) ]]; then
    stage "generate the lab (seed $seed)"
    $PY data/lab/prepare.py --out "$data" --seed "$seed" --mb_per_lang $LAB_MB --progress 0
  fi
  [[ -f $data/manifest.json ]] || { echo "error: $data/manifest.json not found; prepare the data first (README: Real data)" >&2; exit 1; }
  if [[ ! -f $tok || $MODE == --overwrite ]]; then  # the base vocabulary, trained on the pretraining languages
    stage "train the base tokenizer ($VOCAB tokens)"
    mapfile -t PRETRAIN_TEXT < <($PY -c "import sys; from pipeline.documents import group_languages as langs, language_files as files
print('\n'.join(files(sys.argv[1], langs(sys.argv[1], 'pretraining'), 'train').values()))" "$data")
    $PY tokenizer.py train --input "${PRETRAIN_TEXT[@]}" --vocab_size $VOCAB ${TOKENIZER_SAMPLE[@]+"${TOKENIZER_SAMPLE[@]}"} --out "$tok"
  fi
}
if [[ -n ${DATA:-} ]]; then  # one corpus for every seed: prepared (a lab from the first seed) and tokenized once
  LAB_SEEDS=""
  prepare "$DATA" "$TOK" "$SEED0"
else
  LAB_SEEDS=yes
fi
FAILED=$(mktemp)  # the out_dirs of runs that failed, one per line
# on any exit (an error, Ctrl-C, kill) stop the runs still going: each job is a subshell with the run as its child
trap 'for job in $(jobs -p); do pkill -P "$job" 2>/dev/null || true; kill "$job" 2>/dev/null || true; done; rm -f "$FAILED"' EXIT
trap 'exit 130' INT TERM
spawn() {  # spawn OUT_DIR COMMAND...: start COMMAND in the background as soon as fewer than JOBS runs are going
  local dir=$1; shift
  while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n || true; done
  [[ -s $FAILED ]] && wait_all
  mkdir -p "$(dirname "$dir")"
  echo "  start $(basename "$dir")"
  ( if "$@" >> "$dir.log" 2>&1; then echo "  $(basename "$dir"): $(grep -aE '^done|already complete' "$dir.log" | tail -n 1)"
    else echo "$dir" >> "$FAILED"; echo "error: $(basename "$dir") failed; the end of $dir.log:" >&2; tail -c 2000 "$dir.log" >&2; fi ) &
}
wait_all() {  # wait for every spawned run; stop here if any failed
  wait
  [[ ! -s $FAILED ]] || { echo "error: failed: $(tr '\n' ' ' < "$FAILED")" >&2; exit 1; }
}
control() {  # control SEED_DIR BUDGET: the never-pretrained body adapted as BA and AFA are, then finetuned as they are
  local adapted=$1/adapt_none_$2
  $PY adapt.py "${common[@]}" --init_from="$1/pretrain_none" --out_dir="$adapted" --adapt_tokens=$2 "${EXPAND[@]}" >> "$adapted.log" 2>&1 ||
    { echo "error: adapt_none_$2 failed; the end of $adapted.log:"; tail -c 2000 "$adapted.log"; return 1; }
  $PY finetune.py "${common[@]}" --data_dir="$DATA" --init_from="$adapted" --out_dir="$1/finetune_Control"
}
needs_evaluation() {  # needs_evaluation RESULTS NAME=DIR...: --force, or RESULTS is missing, lacks a model or is older than one
  local results=$1; shift
  [[ $MODE != --overwrite && -f $results ]] || return 0
  for m in "$@"; do
    if [[ ${m#*=}/ckpt.pt -nt $results ]] || ! grep -q "\"${m%%=*}\":" "$results"; then return 0; fi
  done
  return 1
}

BUDGETS=$(tr ' ' '\n' <<< "$BUDGETS" | sort -rn | tr '\n' ' ')  # largest first, so that no core idles at the end
MAIN_BUDGET=${BUDGETS%% *}  # BA and AFA continue from the largest
# the retrieval probe reads the lab's lab_read, whose passages are parallel item by item (real data: none yet)
PROBE=(); [[ $LAB ]] && PROBE=(--probe=true)
for ((i = 0; i < SEEDS; i++)); do
  S=$RUNS/seed$i
  SEED=$((SEED0 + i))
  common=("${CONFIG_FILES[@]}" --seed=$SEED $MODE)
  if [[ $LAB_SEEDS ]]; then  # this seed's own lab world and base vocabulary
    DATA=$S/lab TOK=$S/tokenizer.tiktoken
    prepare "$DATA" "$TOK" "$SEED"
  fi
  # what the evaluations below read of the manifest: the multiple-choice tasks, the languages the models before
  # finetuning are asked in, and the translated instructions of positive control (iii) if the data has them
  mapfile -t MC_TASKS < <(manifest "$DATA" "[t for t, v in m.get('tasks', {}).items() if v.get('kind') == 'mc']")
  mapfile -t BEFORE_LANGS < <(manifest "$DATA" "g('pretraining') + g('adapting')")
  mapfile -t CHAT_LANGS < <(manifest "$DATA" "['en'] + g('adapting')")
  mapfile -t TRANSLATED < <(manifest "$DATA" "[m['instructions_translated'][k] for k in ('train', 'val')
                                               if 'instructions_translated' in m]")
  # 3. pretraining: a standard and a forgetting model; and the control's body, initialised and saved untrained
  stage "seed $SEED: pretraining (log: $S/pretrain_*.log)"
  spawn "$S/pretrain_none" $PY train.py "${common[@]}" --data_dir="$DATA" --tokenizer="$TOK" --out_dir="$S/pretrain_none" --max_iters=0
  spawn "$S/pretrain_standard" $PY train.py "${common[@]}" --data_dir="$DATA" --tokenizer="$TOK" --out_dir="$S/pretrain_standard" --forget_every=0
  spawn "$S/pretrain_forgetting" $PY train.py "${common[@]}" --data_dir="$DATA" --tokenizer="$TOK" --out_dir="$S/pretrain_forgetting"
  wait_all
  # 4. adaptation of both at several budgets: [AFA]'s vocabulary expansion (BA and AFA continue from the
  # largest) and [CHEN]'s relearning of every embedding (its sample-efficiency curve). Alongside run what
  # waits for nothing here: the Baseline's finetuning (5.), the control's adaptation and finetuning (one job),
  # and the chen variant's pretraining. Longest first.
  # the keep-head adaptations serve the keephead variant and the splice ([CHEN] keeps the head finetuned with the body)
  keephead=""; [[ " $VARIANTS " == *" keephead "* || " $VARIANTS " == *" splice "* ]] && keephead=yes
  keephead_logs=""; [[ $keephead ]] && keephead_logs=", $S/keephead_*.log"
  stage "seed $SEED: adaptation (log: $S/adapt_*.log, $S/relearn_*.log$keephead_logs)"
  if [[ " $VARIANTS " == *" chen "* ]]; then
    spawn "$S/pretrain_chen" $PY train.py "${common[@]}" --data_dir="$DATA" --tokenizer="$TOK" --out_dir="$S/pretrain_chen" --emb_episode_lr
  fi
  spawn "$S/finetune_Control" control "$S" "$MAIN_BUDGET"
  for T in $BUDGETS; do
    for kind in standard forgetting; do
      spawn "$S/adapt_${kind}_$T" $PY adapt.py "${common[@]}" --init_from="$S/pretrain_$kind" --out_dir="$S/adapt_${kind}_$T" --adapt_tokens=$T "${EXPAND[@]}"
      if [[ $T == "$MAIN_BUDGET" && $keephead ]]; then
        spawn "$S/keephead_${kind}_$T" $PY adapt.py "${common[@]}" --init_from="$S/pretrain_$kind" --out_dir="$S/keephead_${kind}_$T" --adapt_tokens=$T "${KEEPHEAD[@]}"
      fi
      spawn "$S/relearn_${kind}_$T" $PY adapt.py "${common[@]}" --init_from="$S/pretrain_$kind" --out_dir="$S/relearn_${kind}_$T" --adapt_tokens=$T --mode=relearn
    done
    if [[ $T == "$MAIN_BUDGET" ]]; then
      spawn "$S/finetune_Baseline" $PY finetune.py "${common[@]}" --data_dir="$DATA" --init_from="$S/pretrain_standard" --out_dir="$S/finetune_Baseline"
      if (( ${#TRANSLATED[@]} )); then  # the ceiling of positive control (ii): the same instructions, translated
        spawn "$S/finetune_Baseline_translated" $PY finetune.py "${common[@]}" --data_dir="$DATA" --init_from="$S/pretrain_standard" \
          --out_dir="$S/finetune_Baseline_translated" --data="$DATA/${TRANSLATED[0]}" --val_data="$DATA/${TRANSLATED[1]}"
      fi
      if [[ " $VARIANTS " == *" splice "* ]]; then  # [CHEN]'s English finetune: the pretrained body alone
        for kind in standard forgetting; do
          spawn "$S/finetune_body_$kind" $PY finetune.py "${common[@]}" --data_dir="$DATA" --init_from="$S/pretrain_$kind" --out_dir="$S/finetune_body_$kind" --train_params=body
        done
      fi
    fi
  done
  wait_all
  # 5. English instruction finetuning of the adapted models: BA, AFA (and the variants' BA_<v>, AFA_<v>; the control's ran in 4.)
  stage "seed $SEED: finetuning (log: $S/finetune_*.log)"
  MODELS=(Baseline="$S/finetune_Baseline")
  (( ${#TRANSLATED[@]} )) && MODELS+=(Baseline_translated="$S/finetune_Baseline_translated")
  for recipe in adapt $VARIANTS; do
    [[ $recipe == splice || $recipe == chen ]] && continue  # splice: not finetuned after adapting, spliced below
    suffix=${recipe/#adapt/}; suffix=${suffix:+_$suffix}
    for pair in BA:standard AFA:forgetting; do
      name=${pair%%:*}$suffix
      spawn "$S/finetune_$name" $PY finetune.py "${common[@]}" --data_dir="$DATA" --init_from="$S/${recipe}_${pair#*:}_$MAIN_BUDGET" --out_dir="$S/finetune_$name"
      MODELS+=("$name=$S/finetune_$name")
    done
    [[ $recipe == adapt ]] && MODELS+=(Control="$S/finetune_Control")  # finetuned in 4.
  done
  wait_all
  # [CHEN]'s transfer: the English-finetuned body with the embeddings and head of a keep-head adaptation, whose
  # old head rows are the ones the body was finetuned through
  if [[ " $VARIANTS " == *" splice "* ]]; then
    for pair in BA:standard AFA:forgetting; do
      kind=${pair#*:}
      $PY splice.py --body_from="$S/finetune_body_$kind" --embeddings_from="$S/keephead_${kind}_$MAIN_BUDGET" --out_dir="$S/splice_$kind" $MODE >> "$S/splice_$kind.log"
      MODELS+=("${pair%%:*}_splice=$S/splice_$kind")
    done
  fi
  # 6. evaluation: bits per byte, self-similarity, benchmarks, per language group, every model asked with plain
  # prompts, as before finetuning (7.); again if a model was finetuned after the results were written or the
  # results lack one. Each evaluation runs alone, so it gets every core
  # The lab asks its multiple-choice tasks only: lab_qa (generation) sits at the floor in the lab and costs a fifth
  # of a model's evaluation (docs/method.md, "Primary endpoints"); real data keeps every benchmark
  TASKS=(); [[ $LAB ]] && (( ${#MC_TASKS[@]} )) && TASKS=(--tasks "${MC_TASKS[@]}")
  if needs_evaluation "$S/results.json" "${MODELS[@]}"; then
    stage "seed $SEED: evaluation"
    $PY evaluate.py "${CONFIG_FILES[@]}" --data_dir="$DATA" --models "${MODELS[@]}" ${TASKS[@]+"${TASKS[@]}"} --chat=false \
      --out="$S/results.json" --threads=$CORES
  fi
  # 7. each model before finetuning (the pretrained Baseline, the adapted BA, AFA and Control), asked in the
  # exercise format of their text (plain prompts), in the pretraining and adapting languages: what finetuning
  # changes (benchmarks, and bits per byte on the same bytes as 6.), the positive controls' starting point, and
  # the retrieval probe (does the body align languages at all before English finetuning has its say)
  BEFORE=(Baseline_pretrained="$S/pretrain_standard" BA_adapted="$S/adapt_standard_$MAIN_BUDGET"
          AFA_adapted="$S/adapt_forgetting_$MAIN_BUDGET" Control_adapted="$S/adapt_none_$MAIN_BUDGET")
  if (( ${#MC_TASKS[@]} )) && needs_evaluation "$S/adapted.json" "${BEFORE[@]}"; then
    stage "seed $SEED: the models before finetuning"
    $PY evaluate.py "${CONFIG_FILES[@]}" --data_dir="$DATA" --models "${BEFORE[@]}" --tasks "${MC_TASKS[@]}" --langs "${BEFORE_LANGS[@]}" \
      --self_sim=false ${PROBE[@]+"${PROBE[@]}"} --out="$S/adapted.json" --threads=$CORES
  fi
  # 8. the finetuned models again in ChatML, the format they were finetuned in (exploratory: the report puts it
  # beside the plain prompts), on the multiple-choice tasks, in English and the adapting languages
  CHAT=(Baseline_chatml="$S/finetune_Baseline" BA_chatml="$S/finetune_BA" AFA_chatml="$S/finetune_AFA"
        Control_chatml="$S/finetune_Control")
  if (( ${#MC_TASKS[@]} )) && needs_evaluation "$S/chat.json" "${CHAT[@]}"; then
    stage "seed $SEED: the finetuned models in ChatML"
    $PY evaluate.py "${CONFIG_FILES[@]}" --data_dir="$DATA" --models "${CHAT[@]}" --tasks "${MC_TASKS[@]}" --langs "${CHAT_LANGS[@]}" \
      --chat=true --bpb=false --self_sim=false --out="$S/chat.json" --threads=$CORES
  fi
done

stage "report"
$PY report.py --runs "$RUNS" --out "$OUT/report" --command "$MADE_BY"
if (( ${#MC_TASKS[@]} )); then
  $PY report.py --runs "$RUNS" --results adapted.json --out "$OUT/report/adapted" --command "$MADE_BY" > /dev/null
fi
echo "done in $(( $(date +%s) - START ))s: $OUT/report/results.md"
