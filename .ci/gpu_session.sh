#!/usr/bin/env bash
# One GPU lease, prepared as one command (a session gets ~15 device minutes, once):
#   1. the kernel benchmark (python -m kernels.bench --quick),
#   2. `nemodiff bench` on the bundled demo model on the GPU (bf16), with Triton then torch kernels,
#      and the cycle timings `auto` chooses its self-spec variant by (engine/modes/auto.py),
#   3. a continuation of the demo model's training at GPU batch size, WSD-style: a stable phase,
#      then a linear cooldown sized from the stable phase's measured throughput.
#
# Here, first: `bash .ci/gpu_session.sh --pack` writes .gpu/stdlib.tar.xz, this machine's standard
# library (the corpus), and the device call carries it (`carry: [".gpu"]`). The GPU machine's own
# Python lacks the test suite, half the corpus: training on it overfit (docs/BENCHMARKS.md).
# There: bash .ci/gpu_session.sh OUTDIR [SECONDS]
# Everything lands in OUTDIR, at most 8 files (the device tool's limit): the exported weights are
# split in 15 MB parts (`cat model.part.* > model.safetensors`). It runs from the source tree with
# the machine's own torch/transformers (nothing to install).
# INIT=engine/demo_model continues the demo model (the default); INIT= starts a new model, shaped
# by SETS (e.g. SETS="num_hidden_layers=10 dropout=0.1"), with its own tokenizer. Mind the epochs: at ~224k
# tokens/s (the demo model's size, batch 128) seven minutes are ten epochs of the corpus.
set -u
if [ "${1:-}" = "--pack" ]; then
    root=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
    mkdir -p .gpu
    (cd "$root" && find . -name '*.py' -not -path '*/site-packages/*' -print0 | tar --null -T - -cJf "$OLDPWD/.gpu/stdlib.tar.xz")
    ls -l .gpu/stdlib.tar.xz
    exit
fi
out=${1:?usage: gpu_session.sh OUTDIR [SECONDS]   or   gpu_session.sh --pack}
budget=${2:-540}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
log=$out/session.log
batch=${BATCH:-128}
lr=${LR:-8e-3}  # x sqrt(200/step) at step ~19k: ~8e-4, about the batch-8 CPU rate scaled by sqrt(16);
               # a new model (INIT=) starts at the peak itself: untried, ~3e-3 is a cautious choice
init=${INIT-engine/demo_model}
sets=(--set batch_size="$batch" --set lr="$lr")
for pair in ${SETS:-}; do sets+=(--set "$pair"); done
[ -n "$init" ] && from=(--init-from "$init") || from=()
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

say "engine bench, Triton then torch kernels"
timeout 100 $py - >"$out/bench.json" 2>>"$log" <<'EOF' || say "engine bench failed: $?"
import json
import engine
from engine.evaluation.mode_bench import run_bench
from engine.decoding.modes.auto import time_passes
from kernels import dispatch
eng = engine.load("engine/demo_model", dtype="bf16")
reports = {"auto": {"variant": eng.auto.variant, "break_even": eng.auto.break_even}}
for kernels in ("triton", "torch"):
    dispatch.set_backend(kernels)
    reports[kernels] = run_bench(eng, max_new_tokens=64, repeats=2)
    reports[kernels]["pass_seconds"] = time_passes(eng.runner, 8, eng.tokenizer.mask_id, quadratic=True)
print(json.dumps(reports))
EOF

stdlib=()
if [ -f .gpu/stdlib.tar.xz ]; then
    mkdir -p /tmp/stdlib && tar -C /tmp/stdlib -xJf .gpu/stdlib.tar.xz && stdlib=(--stdlib /tmp/stdlib)
fi

# Stable phase: all but ~150 s (cooldown ~110 s of steps, two start-ups, the copy-out).
stable=$(( $(left) - 150 ))
say "train: stable phase ${stable}s: ${from[*]} ${sets[*]} ${stdlib[*]}"
NEMODIFF_KERNELS=torch timeout $((stable + 60)) $py -m engine.training --out $run "${from[@]}" "${sets[@]}" "${stdlib[@]}" \
    --minutes "$($py -c "print($stable / 60)")" --checkpoint-minutes 2 >>"$log" 2>&1 || say "stable phase failed: $?"

steps=$($py - "$run/training_log.jsonl" "$batch" "$(( $(left) - 60 ))" <<'EOF'
import json, statistics, sys
records = [json.loads(line) for line in open(sys.argv[1])]
rate = statistics.median(r["tokens_per_s"] for r in records[-20:] if "tokens_per_s" in r)
print(max(1, int(rate * int(sys.argv[3]) / (int(sys.argv[2]) * 256))))  # 256 tokens a row (Settings.seq_len)
EOF
)
say "train: cooldown ${steps} steps"
NEMODIFF_KERNELS=torch timeout $(( $(left) - 10 )) $py -m engine.training --out $run --resume --cooldown-steps "${steps:-1}" "${stdlib[@]}" \
    --checkpoint-minutes 100 >>"$log" 2>&1 || say "cooldown failed: $?"

say copy-out
cp $run/training_log.jsonl "$out/" 2>>"$log"
(cd $run/export && tar -cf "$out/export-small.tar" config.json tokenizer.json tokenizer_config.json) 2>>"$log"
split -b 15000000 $run/export/model.safetensors "$out/model.part." 2>>"$log"
sha256sum $run/export/model.safetensors >>"$log" 2>&1
say done
