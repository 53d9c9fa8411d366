"""The GPU check script, run here on the CPU so it cannot rot between the sessions that have a GPU: it installs
nothing (every module is present), builds a real-config tiny model, runs it eagerly and with its repeated
blocks compiled (the ``eager`` compile backend: graph capture without code generation, seconds on a CPU), and
writes its table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_device_check_runs_a_two_expert_family_eager_and_compiled(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "bench" / "device_check.sh"), "--device", "cpu", "--dtype", "float32", "--steps", "2",
         "--configs", "wan2.2-i2v-a14b", "--compile-backend", "eager", "--out", str(tmp_path)],
        env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (row,) = json.loads((tmp_path / "device_check.json").read_text())
    assert row["error"] is None and row["family"] == "wan22-i2v"
    assert row["eager_step_s"] > 0 and row["compiled_step_s"] > 0 and row["peak_mem_mb"] > 0
    assert row["compiled_vs_eager_max_abs"] <= 2  # the same graph, captured: the same frames
    table = (tmp_path / "device_check.md").read_text()
    assert "| wan2.2-i2v-a14b | wan22-i2v |" in table
