#!/usr/bin/env bash
# One pass of the CUDA checks on a lent GPU machine, in under 6 minutes; everything goes to $OUT.
#
#   OUT=/some/folder bash scripts/gpu_check.sh          # from the repo root, with the wheels in .whl/
#   OUT=/tmp/gc bash scripts/gpu_check.sh --cpu         # dry run here: CUDA-only steps are skipped
#   STEPS="tests perf" OUT=... bash scripts/gpu_check.sh # only some of: tests perf loader trials (default all)
#   STEPS=fuse BUDGET=420 OUT=... bash scripts/gpu_check.sh # fused trials (not in the default pass: ~6 min alone)
#
# Writes (8 files): gpu_check.log (every step's command, output and exit code), perf_vitc_1gf.json,
# perf_vitc_4gf.json (training step at 224 px, batch 256, TFLOP/s and MFU; perf_*_compiled*.json the same
# with torch.compile), loader_device.json and
# loader_cpu.json (the ImageNet-like JPEG loader, GPU decode vs CPU workers, against the model), the same
# from the prepared 256 px shards (loader_prepared_*.json), and
# decode_cpu.json (reduced vs full-size JPEG decode, img/s per core); with STEPS=fuse, fuse_K.json for
# K = 1/8/32/128 (trials/hour, peak GPU memory, training MFU of fused trials).  Each step has its own timeout,
# and a failing step does not stop the others.
set -u
: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
CPU_ONLY=0
[ "${1:-}" = "--cpu" ] && CPU_ONLY=1
PY=${PYTHON:-python3}
DEV=cuda
[ $CPU_ONLY = 1 ] && DEV=cpu
JPEGS=/tmp/hpbench-imnet-like
export HPBENCH_CACHE=/tmp/hpbench-cache
: >"$LOG"

STEPS=${STEPS:-tests perf loader trials}
want() { [[ " $STEPS " == *" $1 "* ]]; }
BUDGET=${BUDGET:-420}  # seconds for the whole script: a step's timeout is cut to what is left

limit() {  # limit SECONDS -> the timeout to use, or nothing when the budget is spent
    local left=$((BUDGET - SECONDS))
    [ "$left" -lt 5 ] && return 1
    [ "$1" -lt "$left" ] && echo "$1" || echo "$left"
}

step() {  # step SECONDS CMD... : log the command, run it with a timeout, log its output and exit code
    local t; t=$(limit "$1") || { echo "- skipped (budget spent): ${*:2}" >>"$LOG"; return; }; shift
    echo "+ [$(date +%T)] timeout $t $*" >>"$LOG"
    timeout "$t" "$@" >>"$LOG" 2>&1
    echo "= rc $? after $SECONDS s in total" >>"$LOG"
}

json() {  # json SECONDS FILE CMD... : as step, stdout to $OUT/FILE
    local t f=$2; t=$(limit "$1") || { echo "- skipped (budget spent): ${*:3}" >>"$LOG"; return; }; shift 2
    echo "+ [$(date +%T)] timeout $t $* > $OUT/$f" >>"$LOG"
    timeout "$t" "$@" >"$OUT/$f" 2>>"$LOG"
    echo "= rc $? after $SECONDS s in total" >>"$LOG"
}

if [ $CPU_ONLY = 0 ]; then
    step 15 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    step 40 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
step 30 "$PY" -c "import torch, torchvision, timm, PIL, optuna, submitit; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), 'torchvision', torchvision.__version__, 'timm', timm.__version__, 'pillow', PIL.__version__, 'optuna', optuna.__version__, 'submitit', submitit.__version__, 'cpus', __import__('os').cpu_count())"

# 1. the GPU tests: bf16 + channels_last, divergence cadence, DDP over NCCL, GPU JPEG decode
[ $CPU_ONLY = 0 ] && want tests && step 120 "$PY" -m pytest tests/engine/test_gpu.py -m gpu -q -p no:cacheprovider -o addopts=-ra

# 2. the training step of the paper's 1 GF and 4 GF ViTc at 224 px, in-memory data
for m in vitc_4gf vitc_1gf; do  # the 4 GF first: its MFU is the figure that matters
    if ! want perf; then
        continue
    elif [ $CPU_ONLY = 0 ]; then
        json 50 "perf_$m.json" "$PY" -m bench.cli perf --model $m --res 224 --batch-size 256 --device cuda \
            --steps 10 --rounds 3 --json
        for B in 256 512; do  # compiled: fused elementwise work, fewer launches; the first round pays compilation
            json 150 "perf_${m}_compiled_b$B.json" "$PY" -m bench.cli perf --model $m --res 224 --batch-size $B \
                --device cuda --steps 10 --rounds 3 --compile --json
        done
    else
        json 60 "perf_$m.json" "$PY" -m bench.cli perf --model $m --res 64 --batch-size 2 --steps 1 --rounds 1 --json
    fi
done

# 3. the JPEG loader against the model: 2000 ImageNet-like JPEGs (200 of them val)
if want loader; then
N=180; [ $CPU_ONLY = 1 ] && N=8
step 30 "$PY" -m bench.data.imagenet_like "$JPEGS" --classes 10 --train-per-class $N --val-per-class 20 \
    --workers "$(nproc --all)"
B=256 R=224 IMGS=150; [ $CPU_ONLY = 1 ] && B=8 R=64 IMGS=20
W=$(( $(nproc --all) - 2 )); [ $W -lt 1 ] && W=1  # loader workers: all cores but the main process's
for dec in device cpu; do
    json 45 "loader_$dec.json" "$PY" -m bench.cli perf --model vitc_1gf --res $R --batch-size $B --device $DEV \
        --steps 5 --rounds 2 --data "imagefolder:$JPEGS" --decode $dec --workers $W \
        --loader-batches 6 --json
done
# the same loader from the JPEGs prepared once (bench data prepare: longer side <= 256 px, FFCV-style)
step 60 "$PY" -m bench.cli data prepare "imagefolder:$JPEGS" --out "$JPEGS-256" --no-progress
for dec in device cpu; do
    json 45 "loader_prepared_$dec.json" "$PY" -m bench.cli perf --model vitc_1gf --res $R --batch-size $B --device $DEV \
        --steps 5 --rounds 2 --data "prepared:$JPEGS-256" --decode $dec --workers $W \
        --loader-batches 6 --json
done
json 25 decode_cpu.json "$PY" scripts/bench_decode.py "$JPEGS" --res 224 --rounds 3 --images $IMGS --json
fi

# 4. the mini study with K trials sharing the GPU: 8 trials of vitc_mini, 2 epochs, 2 trials per job;
#    trials/hour = 8 / wall. The synthetic set is generated once first.
if [ $CPU_ONLY = 0 ] && want trials; then
    export HPBENCH_CACHE=/tmp/hpbench-cache
    step 30 "$PY" -c "from bench.data import load_data; load_data('synthetic', 32)"
    for K in 1 4 8; do
        t0=$SECONDS
        step 60 "$PY" -m bench.cli run --study lr_wd --budget local --models vitc_mini --optimizer adamw \
            --trials 8 --epochs 2 --trials-per-gpu $K --trials-per-job 2 --no-estimate --no-progress \
            --results /tmp/tpg$K
        echo "trials_per_gpu $K: 8 trials in $((SECONDS - t0)) s" >>"$LOG"
    done
fi

# 5. fused trials: 128 AdamW points of vitc_mini, 2 epochs, trained --fuse K at a time in one process
#    (--cluster debug: the step's timeout ends the trainings too); trials/hour from the trials finished in
#    the step's time, peak GPU memory and training MFU from their result.json files (scripts/fuse_report.py).
if [ $CPU_ONLY = 0 ] && want fuse; then
    step 30 "$PY" -c "from bench.data import load_data; load_data('synthetic', 32)"
    for K in 1 8 32 128; do
        rm -rf "/tmp/fuse$K"; t0=$SECONDS
        step 85 "$PY" -m bench.cli run --study lr_wd --budget local --models vitc_mini --optimizer adamw \
            --trials 128 --epochs 2 --fuse $K --trials-per-job 128 --cluster debug --no-estimate --no-progress \
            --results "/tmp/fuse$K"
        json 20 "fuse_$K.json" "$PY" scripts/fuse_report.py "/tmp/fuse$K/lr_wd" --seconds $((SECONDS - t0)) --fuse $K
    done
fi

echo "done after $SECONDS s" >>"$LOG"
