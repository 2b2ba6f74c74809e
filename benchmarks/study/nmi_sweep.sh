#!/usr/bin/env bash
# KMeans NMI at d=10 on full MNIST for several settings and seeds, the runs in
# parallel (for a GPU machine, where each fit is bound by per-step overhead):
#
#   DATA_HOME=DIR OUT=/tmp/nmi JOBS=11 bash benchmarks/study/nmi_sweep.sh
#
# Each line of SETTINGS below is a name and the --set/--max-epochs arguments of
# bench_mnist.py (--set values are Python literals: strings in quotes); the table at
# the end gives NMI, test MSE and fit seconds, and failed runs are named.
set -uo pipefail
cd "$(dirname "$0")/../.."
DATA_HOME=${DATA_HOME:-${SCIKIT_LEARN_DATA:-$HOME/scikit_learn_data}}
OUT=${OUT:-/tmp/nmi}
JOBS=${JOBS:-4}
PYTHON=${PYTHON:-python}
EXTRA=${EXTRA:-}
SEEDS=${SEEDS:-0 1 2}
SETTINGS=${SETTINGS:-"default|
e20|--max-epochs 20
e30|--max-epochs 30
lr6e-3|--set lr=6e-3
lr1e-3|--set lr=1e-3
batch128|--set batch_size=128
wide|--set channels=(64,128,256)
dense|--set architecture='dense'
wd0.1|--set weight_decay=0.1
noise0.2|--set noise_factor=0.2
e20-lr6e-3|--max-epochs 20 --set lr=6e-3"}
mkdir -p "$OUT"
jobs_file="$OUT/jobs.txt"
: > "$jobs_file"
for seed in $SEEDS; do  # seed by seed: a run cut short still has every setting
    while IFS='|' read -r name args; do
        [ -z "$name" ] && continue
        echo "$name|$seed|$args" >> "$jobs_file"
    done <<< "$SETTINGS"
done
export DATA_HOME OUT PYTHON EXTRA
run_one() {
    IFS='|' read -r name seed args <<< "$1"
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 "$PYTHON" benchmarks/bench_mnist.py --data-home "$DATA_HOME" \
        --n-components 10 --seeds "$seed" --methods autoencoder $args \
        ${EXTRA:-} --out "$OUT/$name-s$seed" > "$OUT/$name-s$seed.log" 2>&1
}
export -f run_one
tr '\n' '\0' < "$jobs_file" | xargs -0 -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {}
while IFS='|' read -r name seed _; do  # a run that failed says so, with its error
    if [ ! -f "$OUT/$name-s$seed/results.json" ]; then
        echo "failed: $name seed $seed: $(tail -n 1 "$OUT/$name-s$seed.log")" >&2
    fi
done < "$jobs_file"
"$PYTHON" - "$OUT" <<'PY'
import json, sys
from collections import defaultdict
from pathlib import Path
rows = defaultdict(list)
for path in sorted(Path(sys.argv[1]).glob("*/results.json")):
    name = path.parent.name.rsplit("-s", 1)[0]
    for r in json.load(open(path))["runs"]:
        if r["method"] == "autoencoder":
            rows[name].append(r)
print("| setting | seeds | NMI each | NMI mean | test MSE mean | kNN mean | fit (s) mean |")
print("|---|---:|---|---:|---:|---:|---:|")
for name, rs in rows.items():
    nmi = [r["kmeans_nmi"] for r in rs]
    mean = lambda k: sum(r[k] for r in rs) / len(rs)
    print(f"| {name} | {len(rs)} | {', '.join(f'{v:.3f}' for v in nmi)} | "
          f"{sum(nmi) / len(nmi):.3f} | {mean('test_mse'):.5f} | "
          f"{mean('knn_accuracy'):.4f} | {mean('fit_seconds'):.1f} |")
PY
