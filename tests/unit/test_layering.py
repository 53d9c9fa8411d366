"""House rules from docs/architecture.md that import-linter cannot see (it reads imports, not what runs)."""

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
