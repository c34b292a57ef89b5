#!/usr/bin/env bash
# One GPU check (see bench/README.md): needs only python with torch (+ numpy) on the machine.
#   bash bench/gpu_check.sh [OUTDIR]        GPU run; OUTDIR defaults to $OUT, else runs/gpu_check
#   bash bench/gpu_check.sh --dry [OUTDIR]  the same steps on the CPU at tiny sizes (no installs)
# POT, GeomLoss, tqdm and pytest are installed offline from bench/wheels (`make gpu-wheels` fills it beforehand);
# the package itself is used from this source tree (PYTHONPATH), so nothing is built.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3 || command -v python)}
DRY=""; DEST=""
for arg in "$@"; do
  case "$arg" in
    --dry) DRY="--dry" ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) DEST="$arg" ;;
  esac
done
DEST=${DEST:-${OUT:-runs/gpu_check}}
mkdir -p "$DEST"
LOG="$DEST/install.log"; : > "$LOG"
if [ -z "$DRY" ]; then
  if [ -d bench/wheels ]; then
    # one package at a time: POT needs SciPy, which a bare machine may lack (then only POT's columns are skipped)
    for pkg in tqdm pytest geomloss scipy pot; do
      if "$PY" -c "import ${pkg/pot/ot}" 2>/dev/null; then echo "$pkg: already importable" >> "$LOG"; continue; fi
      if "$PY" -m pip install -q --no-index --find-links bench/wheels "$pkg" >> "$LOG" 2>&1; then echo "$pkg: installed" >> "$LOG"
      else echo "$pkg: not installed (no matching wheel in bench/wheels; run 'make gpu-wheels' on a networked machine)" >> "$LOG"; fi
    done
  else
    echo "bench/wheels is missing: POT, GeomLoss and pytest are used only if already installed ('make gpu-wheels' fills it)" >> "$LOG"
  fi
  cat "$LOG"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" bench/gpu/check.py $DRY --out "$DEST" --install-log "$LOG"
