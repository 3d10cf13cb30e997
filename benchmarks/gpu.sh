#!/usr/bin/env bash
# GPU figures in one go: the CUDA tests, then every benchmark with --device cuda (< 8 min on one
# GPU). Results go where the CPU ones are, as benchmarks/results/<name>_cuda.json, from which
# `python scripts/readme_tables.py` fills the README's GPU columns; the log and each command's exit
# status and time go to benchmarks/results/gpu_run.json.
#
#   bash benchmarks/gpu.sh            # runs when PyTorch sees CUDA, else a dry run (exit 0)
#   bash benchmarks/gpu.sh --dry-run  # only say what would run
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
LIMIT=${GPU_STEP_LIMIT:-120}      # seconds per command at most
BUDGET=${GPU_TOTAL_LIMIT:-470}    # seconds in all (8 minutes): later commands get what is left
COMMANDS=(
  "RECON_GPU_TESTS=1 $PYTHON -m pytest tests -m gpu -p no:nbval -n 0 -q"
  "$PYTHON benchmarks/closed_form.py --device cuda --dlg-steps 100"
  "$PYTHON benchmarks/batch.py --device cuda"
  "$PYTHON benchmarks/batch_repeated.py --device cuda --trials 3"
  "$PYTHON benchmarks/conv.py --device cuda"
  "$PYTHON benchmarks/optimisation.py --device cuda --parts target,unseen --seeds 3"
  "$PYTHON benchmarks/table.py --device cuda --name table_cuda"
  "$PYTHON benchmarks/defences.py --device cuda --rounds 30 --steps 100"
  "$PYTHON benchmarks/datasets_load.py --device cuda"
  "$PYTHON benchmarks/grading_checks.py --device cuda --repeats 2"
  "$PYTHON benchmarks/notebooks.py --device cuda --conditions learner-quiet"
  "$PYTHON benchmarks/defence_accuracy.py --device cuda --seeds 3 --rounds 20"
  "$PYTHON benchmarks/imprint.py --device cuda --seeds 3"
  "$PYTHON benchmarks/victims.py --device cuda --engine replay --seeds 2 --steps 200"
  "$PYTHON benchmarks/federation.py --device cuda --clients 10 100 --no-deployment"
)

if [ "${1:-}" = "--dry-run" ] || ! $PYTHON -c "import sys, torch; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
  echo "dry run: PyTorch sees no CUDA device here (or --dry-run was given). On a GPU this runs,"
  echo "each for at most ${LIMIT} s and ${BUDGET} s in all, results to benchmarks/results/*_cuda.json:"
  for command in "${COMMANDS[@]}"; do echo "  $command"; done
  exit 0
fi

mkdir -p benchmarks/results
log=benchmarks/results/gpu_run.log
: > "$log"
entries=()
start_all=$(date +%s)
for command in "${COMMANDS[@]}"; do
  echo "== $command" | tee -a "$log"
  start=$(date +%s)
  left=$(( BUDGET - (start - start_all) ))
  if [ "$left" -le 5 ]; then echo "   skipped: the ${BUDGET} s budget is spent" | tee -a "$log"; continue; fi
  timeout "$(( left < LIMIT ? left : LIMIT ))" bash -c "$command" >> "$log" 2>&1
  status=$?
  seconds=$(( $(date +%s) - start ))
  echo "   exit $status after ${seconds} s" | tee -a "$log"
  entries+=("{\"command\": \"${command//\"/\\\"}\", \"exit\": $status, \"seconds\": $seconds}")
done
total=$(( $(date +%s) - start_all ))
gpu=$($PYTHON -c "import torch; print(torch.cuda.get_device_name())")
{
  echo "{\"gpu\": \"$gpu\", \"total_seconds\": $total, \"runs\": ["
  (IFS=,; echo "${entries[*]}")
  echo "]}"
} > benchmarks/results/gpu_run.json
echo "total ${total} s on $gpu; log: $log"
