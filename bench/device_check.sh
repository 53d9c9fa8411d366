#!/usr/bin/env bash
# The GPU check (bench/device_check.py) on a lent GPU machine, from the source tree, in one short run.
#
# That machine has Python with torch, transformers, accelerate, peft, safetensors and sentencepiece, but
# neither diffusers nor the rest of what the engine imports, and no network: this installs the wheels carried
# in bench/wheels (made here by bench/fetch_wheels.sh; ignored by git, carried by the device tool) for the
# modules that are missing, then runs the check with PYTHONPATH=src (no `pip install -e`: the project pins a
# CPU torch that cannot resolve there). Results: $OUT/device_check.{md,json}.
#
#   bash bench/device_check.sh                 # every family, cuda, bfloat16, eager and compiled
#   bash bench/device_check.sh --device cpu --no-compile --configs wan2.1-t2v-1.3b   # what the test suite runs
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WHEELS=bench/wheels

missing=()
for pair in diffusers:diffusers pydantic:pydantic ftfy:ftfy PIL:pillow; do
  "$PYTHON" -c "import ${pair%%:*}" 2>/dev/null || missing+=("${pair##*:}")
done
if ((${#missing[@]})); then
  if [[ ! -d $WHEELS ]]; then
    echo "missing ${missing[*]} and no $WHEELS: run bench/fetch_wheels.sh where PyPI is reachable" >&2
    exit 2
  fi
  # What is installed already satisfies the rest; pip takes only what is missing from the carried wheels.
  "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" "${missing[@]}"
fi
PYTHONPATH=src exec "$PYTHON" bench/device_check.py "$@"
