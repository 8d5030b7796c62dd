#!/usr/bin/env bash
# One GPU lease, prepared as one command (a session gets ~15 device minutes, once):
#   1. the kernel benchmark (python -m kernels.bench --quick),
#   2. `nemodiff bench` on the bundled demo model on the GPU (Triton kernels, bf16),
#   3. a continuation of the demo model's training at GPU batch size, WSD-style: a stable phase,
#      then a linear cooldown sized from the stable phase's measured throughput.
# Usage, from the repo root on the GPU machine: bash .ci/gpu_session.sh OUTDIR [SECONDS]
# Everything lands in OUTDIR, at most 8 files (the device tool's limit): the exported weights are
# split in two 15 MB parts (`cat model.part.* > model.safetensors`).
# It runs from the source tree with the machine's own torch/transformers (nothing to install).
set -u
out=${1:?usage: gpu_session.sh OUTDIR [SECONDS]}
budget=${2:-540}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
log=$out/session.log
batch=${BATCH:-128}
lr=${LR:-8e-3}  # x sqrt(200/step) at step ~19k: ~8e-4, about the batch-8 CPU rate scaled by sqrt(16)
run=/tmp/gpu-run
py=${PY:-python3}  # the machine's own python, which holds torch
left() { echo $((budget - SECONDS)); }
say() { echo "== $* (t=${SECONDS}s)" | tee -a "$log"; }

say device
{ nvidia-smi -L; $py -c "import sys, torch, triton, transformers, tokenizers
print(sys.version.split()[0], 'torch', torch.__version__, 'triton', triton.__version__,
      'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__)"; } >>"$log" 2>&1

say kernels.bench
timeout 90 $py -m kernels.bench --quick --json "$out/kernels.json" >>"$log" 2>&1 || say "kernels.bench failed: $?"

say engine bench
timeout 75 $py - >"$out/bench.json" 2>>"$log" <<'EOF' || say "engine bench failed: $?"
import json, sys
import engine
from engine.bench import run_bench
eng = engine.load("engine/demo_model", device=sys.argv[1] if len(sys.argv) > 1 else "auto", dtype="bf16")
print(json.dumps(run_bench(eng, max_new_tokens=64, repeats=1)))
EOF

# Stable phase: all but ~150 s (cooldown ~110 s of steps, two start-ups, the copy-out).
stable=$(( $(left) - 150 ))
say "train: stable phase ${stable}s, batch $batch, lr $lr"
NEMODIFF_KERNELS=torch timeout $((stable + 60)) $py -m engine.training --out $run --init-from engine/demo_model --batch-size "$batch" --lr "$lr" \
    --minutes "$($py -c "print($stable / 60)")" --checkpoint-minutes 2 >>"$log" 2>&1 || say "stable phase failed: $?"

steps=$($py - "$run/training_log.jsonl" "$batch" "$(( $(left) - 40 ))" <<'EOF'
import json, statistics, sys
records = [json.loads(line) for line in open(sys.argv[1])]
rate = statistics.median(r["tokens_per_s"] for r in records[-20:] if "tokens_per_s" in r)
print(max(1, int(rate * int(sys.argv[3]) / (int(sys.argv[2]) * 256))))
EOF
)
say "train: cooldown ${steps} steps"
NEMODIFF_KERNELS=torch timeout $(( $(left) - 10 )) $py -m engine.training --out $run --resume --cooldown-steps "${steps:-1}" \
    --checkpoint-minutes 100 >>"$log" 2>&1 || say "cooldown failed: $?"

say copy-out
cp $run/training_log.jsonl $run/export/config.json "$out/" 2>>"$log"
split -b 15000000 $run/export/model.safetensors "$out/model.part." 2>>"$log"
sha256sum $run/export/model.safetensors >>"$log" 2>&1
say done
