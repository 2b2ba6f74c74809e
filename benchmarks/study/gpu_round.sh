#!/usr/bin/env bash
# One round on a lent GPU machine: the MNIST GPU check of the current
# defaults, encoding precisions on the GPU, then the photo bound sweep (quality only:
# its fits share the GPU, so no timings are read from them). Results under $OUT.
#
#   DATA_HOME=.data PHOTOS=.photos OUT=/tmp/round bash benchmarks/study/gpu_round.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/round}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python}
export PYTHON
start=$(date +%s)
DATA_HOME=${DATA_HOME:-${SCIKIT_LEARN_DATA:-$HOME/scikit_learn_data}} OUT="$OUT/gpu" bash benchmarks/gpu_check.sh \
    > "$OUT/gpu_check.log" 2>&1
rm -rf "$OUT/gpu/runs"
echo "gpu_check done after $(( $(date +%s) - start )) s"
tail -n 5 "$OUT/gpu_check.log"
"$PYTHON" benchmarks/study/gpu_inference.py --data-home "${DATA_HOME:-${SCIKIT_LEARN_DATA:-$HOME/scikit_learn_data}}" \
    --out "$OUT/inference" 2>&1 | tail -n 12
echo "inference done after $(( $(date +%s) - start )) s"
OUT="$OUT/bound" JOBS=${JOBS:-14} TIMEOUT=${TIMEOUT:-200} PHOTOS=${PHOTOS:-} \
    bash benchmarks/study/photo_bound.sh
echo "all done after $(( $(date +%s) - start )) s"
