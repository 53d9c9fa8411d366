"""House rules from docs/architecture.md that code review alone would let slip."""

from __future__ import annotations

import subprocess
import sys


def test_api_process_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "from dreamreel.api.app import create_app\n"
        "from dreamreel.config import Settings\n"
        "import tempfile, pathlib\n"
        "d = pathlib.Path(tempfile.mkdtemp())\n"
        "create_app(Settings(data_dir=d))\n"
        "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"API imported {out.stdout.strip()}"


def test_core_imports_nothing_from_upper_layers() -> None:
    from pathlib import Path

    import dreamreel.core

    core_dir = Path(dreamreel.core.__file__).parent
    for source in core_dir.glob("*.py"):
        text = source.read_text()
        for forbidden in ("dreamreel.api", "dreamreel.worker", "dreamreel.engine", "import torch"):
            assert forbidden not in text, f"{source.name} imports {forbidden}"
