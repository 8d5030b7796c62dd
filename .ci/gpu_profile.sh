#!/usr/bin/env bash
# The pass profile on a lent GPU, in one call (about 4 minutes): for a random NLD-3B checkpoint
# (bf16) and the bundled demo model (bf16), each pass width (1, B, B(B+1), a prompt chunk) timed
# with CUDA graphs and eagerly (NEMODIFF_CUDA_GRAPHS=0), against its weight matmuls alone and the
# bandwidth floor (engine/evaluation/pass_profile.py); then AR decode of the demo model against transformers.
#   bash .ci/gpu_profile.sh OUTDIR
# Writes OUTDIR/profile.md (the tables, as `nemodiff bench --profile` prints them),
# OUTDIR/profile.json and OUTDIR/session.log. Runs from the source tree with the machine's own
# torch/transformers; the 3B checkpoint is written to /tmp (random weights: nothing to download).
set -u
out=${1:?usage: gpu_profile.sh OUTDIR}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
py=${PY:-python3}
big=${BIG:-/tmp/nld-3b}  # BIG=DIR profiles another checkpoint; DEVICE=cpu dry-runs the script
device=${DEVICE:-cuda}
log=$out/session.log
say() { echo "== $* (t=${SECONDS}s)" | tee -a "$log"; }

say device
{ nvidia-smi -L; $py -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"; } >>"$log" 2>&1

say "random 3B checkpoint"
[ -d "$big" ] || timeout 240 $py -c "from engine.loading.random_checkpoint import write_random_checkpoint as w; w('$big', '3b')" \
    >>"$log" 2>&1 || say "random-checkpoint failed: $?"

for graphs in 1 0; do
    for model in "$big" demo; do
        say "profile $model graphs=$graphs"
        NEMODIFF_CUDA_GRAPHS=$graphs timeout 200 $py - "$model" "$graphs" "$device" >>"$out/profile.jsonl" 2>>"$log" <<'EOF' \
            || say "profile of $model failed: $?"
import json, sys
import engine
from engine.evaluation.pass_profile import profile_engine
eng = engine.load(sys.argv[1], device=sys.argv[3], dtype="bf16")
passes = profile_engine(eng)
print(json.dumps({"model": eng.name, "graphs": sys.argv[2] == "1", "graph_note": eng.runner.graph_note,
                  "profile": passes}))
EOF
    done
done

say "demo bench (AR and linear self-spec against transformers, graphs on)"
timeout 150 $py - "$device" >"$out/bench.json" 2>>"$log" <<'EOF' || say "bench failed: $?"
import json, sys
import engine
from engine.evaluation.mode_bench import run_bench
eng = engine.load("demo", device=sys.argv[1], dtype="bf16")
print(json.dumps(run_bench(eng, modes=["ar", "self-spec-linear"], repeats=2) | {"graph_note": eng.runner.graph_note}))
EOF

$py - "$out" <<'EOF' 2>>"$log"
import json, sys
from engine.evaluation.pass_profile import table
out = sys.argv[1]
rows = [json.loads(line) for line in open(f"{out}/profile.jsonl")]
json.dump(rows, open(f"{out}/profile.json", "w"), indent=1)
with open(f"{out}/profile.md", "w") as f:
    for r in rows:
        note = f" ({r['graph_note']})" if r["graph_note"] else ""
        f.write(f"### {r['model']}, CUDA graphs {'on' if r['graphs'] else 'off'}{note}\n\n{table(r['profile'])}\n\n")
print(open(f"{out}/profile.md").read())
EOF
say done
