#!/usr/bin/env bash
# Long fits on photo patches, the runs in parallel (for a GPU machine), and the best
# epoch of each on the test photos: the upper bound of benchmarks/study/photos.md.
#
#   OUT=/tmp/bound JOBS=14 PHOTOS=.photos bash benchmarks/study/photo_bound.sh
#
# Each line of SETTINGS is a name, the layout (cross, split, oracle; see
# photo_bound.py) and its other arguments. PHOTOS: a folder of <name>.npy written by
# `photo_bound.py dump --photos DIR` (for a machine without scikit-image). A run
# past TIMEOUT seconds is stopped; the table keeps the epochs it reached. OUT gets
# summary.json (every curve) and table.md only.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/bound}
JOBS=${JOBS:-2}
PYTHON=${PYTHON:-python}
TIMEOUT=${TIMEOUT:-600}
PHOTOS=${PHOTOS:-}
DIHEDRAL="augmentation='dihedral'"
SETTINGS=${SETTINGS:-"c-default|cross --set max_epochs=60
c-dihedral|cross --set max_epochs=150 $DIHEDRAL
c-dihedral-wide|cross --set max_epochs=150 $DIHEDRAL channels=(64,128,256)
c-dihedral-100k|cross --n-train 100000 --set max_epochs=40 $DIHEDRAL
c-dense-dihedral|cross --set max_epochs=150 $DIHEDRAL architecture='dense'
s-dihedral|split --set max_epochs=150 $DIHEDRAL
s-dihedral-100k|split --n-train 100000 --set max_epochs=40 $DIHEDRAL
o-default|oracle --set max_epochs=60
o-dihedral|oracle --set max_epochs=150 $DIHEDRAL
o-dihedral-wide|oracle --set max_epochs=150 $DIHEDRAL channels=(64,128,256)
o-dihedral-100k|oracle --n-train 100000 --set max_epochs=40 $DIHEDRAL
c8-dihedral|cross --d 8 --set max_epochs=150 $DIHEDRAL
s8-dihedral|split --d 8 --set max_epochs=150 $DIHEDRAL
o8-dihedral|oracle --d 8 --set max_epochs=150 $DIHEDRAL"}
RUNS=$(mktemp -d)
mkdir -p "$OUT"
export RUNS PYTHON TIMEOUT PHOTOS
run_one() {
    IFS='|' read -r name args <<< "$1"
    local photos=()
    [ -n "$PHOTOS" ] && photos=(--photos "$PHOTOS")
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 timeout "$TIMEOUT" "$PYTHON" benchmarks/study/photo_bound.py \
        $args "${photos[@]}" --out "$RUNS/$name.json" > "$RUNS/$name.log" 2>&1
}
export -f run_one
printf '%s\n' "$SETTINGS" | grep -v '^$' | tr '\n' '\0' |
    xargs -0 -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {}
"$PYTHON" - "$RUNS" "$OUT" <<'PY'
import json, re, sys
from pathlib import Path
runs, out = Path(sys.argv[1]), Path(sys.argv[2])
summary, lines = {}, ["| run | best on the test sets: PCA's MSE / this (epoch) | last | fit (s) |",
                      "|---|---|---|---:|"]
for log in sorted(runs.glob("*.log")):
    name = log.stem
    path = runs / f"{name}.json"
    if path.exists():
        r = json.loads(path.read_text())
    else:  # stopped or failed: the epochs it printed
        curve = []
        for line in log.read_text().splitlines():
            m = re.match(r"epoch +(\d+) (?:held-out \S+ )?(.*)", line)
            if m:
                values = re.findall(r"([a-z0-9% ]+?) ([0-9.]+)(?: |$)", m.group(2))
                curve.append({"epoch": int(m.group(1)),
                              **{k.strip(): float(v) for k, v in values}})
        if not curve:
            print(f"failed: {name}: {log.read_text().strip().splitlines()[-1:]}",
                  file=sys.stderr)
            continue
        keys = [k for k in curve[0] if k != "epoch"]
        r = {"stopped": True, "curve": curve, "last": curve[-1], "fit_seconds": None,
             "best": {k: {"epoch": max(curve, key=lambda e: e[k])["epoch"],
                          "ratio": max(e[k] for e in curve)} for k in keys}}
    summary[name] = r
    best = "; ".join(f"{k} {b['ratio']:.3f} ({b['epoch']})" for k, b in r["best"].items())
    last = "; ".join(f"{r['last'][k]:.3f}" for k in r["best"])
    seconds = r["fit_seconds"] if r["fit_seconds"] is not None else "stopped"
    lines.append(f"| {name} | {best} | {last} (epoch {r['last']['epoch']}) | {seconds} |")
(out / "summary.json").write_text(json.dumps(summary, indent=1))
(out / "table.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
rm -rf "$RUNS"
