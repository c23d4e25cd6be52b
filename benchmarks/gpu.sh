#!/usr/bin/env bash
# GPU numbers of issue 11, in at most 8 minutes, per model (ghost_filter, hit_labeller,
# calo_classifier):
#   * training: hepml's trainer (bf16 autocast, Lightning) against a bare
#     forward-backward-AdamW loop on the same GPU tensors, and the trainer with
#     training.compile (benchmarks/train_throughput.py --compile), peak GPU memory;
#   * inference: eager and torch.compile (bf16 autocast) and onnxruntime (CUDA
#     provider with onnxruntime-gpu, else the CPU), peak GPU memory
#     (benchmarks/inference.py --device cuda).
#
#     bash benchmarks/gpu.sh [CONFIG]        # default config/full.yaml (GPU-node sizes)
#
# Run from anywhere, with the project's venv (a CUDA build of torch) active. Each step
# gets a share of the 8 minutes (GPU_BENCH_LIMIT_S, default 480) and is stopped when
# it runs over; a step that fails or is stopped is reported and the others still run.
# On a machine where torch sees no CUDA device it says so and exits 1.
set -uo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-config/full.yaml}
LIMIT_S=${GPU_BENCH_LIMIT_S:-480}
TRAIN_N=${GPU_BENCH_TRAIN_N:-131072}
INFER_N=${GPU_BENCH_INFER_N:-65536}
TASKS=(ghost_filter hit_labeller calo_classifier)

if ! python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu.sh: torch sees no CUDA device on $(hostname) (torch.cuda.is_available() is False," \
        "or torch is not importable): nothing measured; run it on a GPU node with a CUDA build of torch" >&2
    exit 1
fi
[[ -f $CONFIG ]] || {
    echo "gpu.sh: config file '$CONFIG' does not exist" >&2
    exit 2
}

echo "# $(date -u +%FT%TZ) $(hostname), config $CONFIG"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
python -c 'import torch, onnxruntime as ort; print("# torch", torch.__version__, "CUDA", torch.version.cuda, "|", torch.cuda.get_device_name(), "| onnxruntime", ort.__version__, ort.get_available_providers())'

failed=0
# step NAME SHARE_S CMD...: run CMD with at most SHARE_S seconds, never past the 8 minutes
step() {
    local name=$1 share=$2
    shift 2
    local left=$((LIMIT_S - SECONDS - 5))
    ((share > left)) && share=$left
    if ((share < 10)); then
        echo "gpu.sh: $name: skipped, the ${LIMIT_S} s are spent" >&2
        failed=1
        return
    fi
    echo
    echo "## $name (at most ${share} s)"
    timeout -k 5 "$share" "$@" 2> >(grep -v -E '^(W[0-9]{4}|GPU available|TPU available|.*Tip:|`Trainer.fit` stopped)' >&2)
    local rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "gpu.sh: $name: stopped after ${share} s" >&2
        failed=1
    elif ((rc != 0)); then
        echo "gpu.sh: $name: failed (exit $rc)" >&2
        failed=1
    fi
}

# training: three epochs each (the first, with any compilation, is left out of the rates)
for task in "${TASKS[@]}"; do
    step "train $task" 100 python benchmarks/train_throughput.py --model "$task" --config "$CONFIG" \
        --device cuda --n "$TRAIN_N" --epochs 3 --compile
done
# inference: every model in one process (compile times printed apart)
step "inference" 170 python benchmarks/inference.py --device cuda --config "$CONFIG" \
    --n "$INFER_N" --batch 4096 --repeats 5

echo
echo "# gpu.sh: done in ${SECONDS} s$( ((failed)) && echo ', some steps did not finish (see above)')"
exit $failed
