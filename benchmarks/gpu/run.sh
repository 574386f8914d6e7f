#!/usr/bin/env bash
# The sparse attention GPU check in one command: bash benchmarks/gpu/run.sh [--smoke] OUTDIR
#
# Full mode (a CUDA GPU; torch + triton, no vLLM, no network): about 6 minutes on an H200, capped
# at 7.5 by --budget-s 450 (sections skip sizes rather than overrun; budget in
# generation/sparse_attention/README.md). --smoke: the same code on tiny shapes on CPU, the
# Triton kernel under TRITON_INTERPRET=1 (about a minute on two cores); CI runs it.
# Writes OUTDIR/sparse_gpu_check.json and prints it. PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
smoke=()
if [ "${1:-}" = "--smoke" ]; then
  smoke=(--smoke)
  export TRITON_INTERPRET=1
  shift
fi
if [ $# -ne 1 ]; then
  echo "usage: bash benchmarks/gpu/run.sh [--smoke] OUTDIR" >&2
  exit 2
fi
py="${PYTHON:-python3}"
export PYTHONDONTWRITEBYTECODE=1
exec "$py" -m benchmarks.gpu.check ${smoke[@]+"${smoke[@]}"} "$1"
