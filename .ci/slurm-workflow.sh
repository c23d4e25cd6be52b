#!/usr/bin/env bash
# CI: the test workflow submitted to a real single-node SLURM on localhost through
# profiles/slurm-local, the way a user submits to a cluster with profiles/slurm.
#
# Run with the project's venv active (the jobs inherit PATH through sbatch --export=ALL,
# so `hepml` and `snakemake` must be on it). Needs root or passwordless sudo for
# .ci/slurm-local.sh. Environment:
#   SLURM_CI_RESULTS    results directory of this run          (default results-slurm)
#   SLURM_CI_TIMEOUT_S  hard limit for the Snakemake run, s    (default 900)
#   SLURM_CI_INSTALL    0: do not pip install the slurm extra  (default 1)
#   SLURM_CI_KEEP       1: leave SLURM running afterwards      (default 0)
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${SLURM_CI_RESULTS:-results-slurm}
LIMIT=${SLURM_CI_TIMEOUT_S:-900}

say() { echo "slurm-workflow: $*"; }
fail() {
    echo "slurm-workflow: FAILED: $*" >&2
    exit 1
}

for c in python snakemake hepml; do
    command -v "$c" >/dev/null || fail "'$c' is not on PATH (activate the venv)"
done

if [[ ${SLURM_CI_INSTALL:-1} != 0 ]]; then
    say "pip install -e '.[slurm]'"
    python -m pip install -q -e '.[slurm]'
fi

t0=$SECONDS
.ci/slurm-local.sh start
if [[ ${SLURM_CI_KEEP:-0} != 1 ]]; then
    trap '.ci/slurm-local.sh stop' EXIT
fi
say "SLURM up in $((SECONDS - t0)) s"

# A GPU job sees its (fake) GPU. Without CAP_MKNOD the gres is a plain file and SLURM
# still schedules it but sets no CUDA_VISIBLE_DEVICES; say so instead of failing.
cvd=$(timeout 60 srun --gpus=1 --mem=100 printenv CUDA_VISIBLE_DEVICES || true)
if [[ $cvd == 0 ]]; then
    say "srun --gpus=1 sees CUDA_VISIBLE_DEVICES=0"
elif [[ -c /dev/fakegpu0 ]]; then
    fail "srun --gpus=1 got CUDA_VISIBLE_DEVICES='$cvd', expected 0"
else
    say "WARNING: /dev/fakegpu0 is not a device; GPU jobs get no CUDA_VISIBLE_DEVICES"
fi

rm -rf "$RESULTS" .snakemake/slurm_logs
t1=$SECONDS
# The hard limit matters: a wrong status command makes Snakemake wait forever and
# ignore SIGTERM (see profiles/slurm-local/config.yaml).
timeout -k 10 "$LIMIT" snakemake --profile profiles/slurm-local \
    --configfile config/test.yaml --config "workflow={results: $RESULTS}" ||
    fail "snakemake through SLURM exited with $? (124/137: over ${LIMIT} s)"
say "workflow through SLURM took $((SECONDS - t1)) s"

test -s "$RESULTS/report/index.html" || fail "no $RESULTS/report/index.html"

# Every train job ran as a SLURM job that was given a GPU and completed. The plugin
# keeps each job's log as .snakemake/slurm_logs/rule_<rule>/<wildcards>/<jobid>.log.
shopt -s nullglob
train_logs=(.snakemake/slurm_logs/rule_train/*/*.log)
models=("$RESULTS"/models/*/model.pt)
((${#models[@]} > 0)) || fail "no models in $RESULTS/models"
((${#train_logs[@]} == ${#models[@]})) ||
    fail "${#train_logs[@]} train SLURM logs for ${#models[@]} models"
for f in "${train_logs[@]}"; do
    id=$(basename "$f" .log)
    line=$(squeue --states=all --noheader -j "$id" -O 'State:12,Comment:60,tres-per-job:20')
    read -r state comment tres <<<"$line"
    [[ $state == COMPLETED && $comment == rule_train* && $tres == *gpu:1 ]] ||
        fail "train job $id: '$line'"
done

# All jobs of this run (the job name is Snakemake's run id).
run_id=$(squeue --states=all --noheader -j "$(basename "${train_logs[0]}" .log)" -o '%j')
say "SLURM jobs of run $run_id:"
squeue --states=all --name "$run_id" -O 'JobID:6,State:11,NumCPUs:5,MinMemory:11,TimeLimit:11,tres-per-job:13,Comment:50'
bad=$(squeue --states=all --noheader --name "$run_id" -o '%T' | grep -cv '^COMPLETED$' || true)
((bad == 0)) || fail "$bad jobs of the run did not complete"
for rule in simulate build train evaluate report; do
    squeue --states=all --noheader --name "$run_id" -o '%k' | grep -q "^rule_$rule" ||
        fail "no SLURM job for rule $rule"
done
say "OK: all rules ran as SLURM jobs; ${#models[@]} train jobs got --gpus=1 ($((SECONDS - t0)) s in all)"
