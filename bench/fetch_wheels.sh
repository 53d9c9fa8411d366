#!/usr/bin/env bash
# Wheels the GPU machine lacks, for bench/device_check.sh: diffusers and what the engine imports beyond the
# machine's image (Python 3.12, x86_64). Pure-Python wheels where they exist; pydantic-core and Pillow as
# cp312 manylinux wheels. Kept small (the device tool carries at most 64 MiB with the tree).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf bench/wheels && mkdir -p bench/wheels
pip_download() {
  .venv/bin/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --platform any -d bench/wheels "$@"
}
pip_download "diffusers==$(.venv/bin/python -c 'import diffusers; print(diffusers.__version__)')" \
  "pydantic==$(.venv/bin/python -c 'import pydantic; print(pydantic.VERSION)')" \
  "pydantic-core==$(.venv/bin/python -c 'import pydantic_core; print(pydantic_core.__version__)')" \
  annotated-types typing-inspection typing-extensions importlib-metadata zipp ftfy wcwidth pillow
du -sh bench/wheels
