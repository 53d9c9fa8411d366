"""LoRA adapters as an operator and a caller meet them: a models config lists one for ``ray-2`` (a tiny LoRA made
offline for the tiny model). Through a live server the unmodified ``lumaai`` SDK names adapters in the ``loras``
extension field (``extra_body``): a name the config does not list is a 4xx naming the configured ones, before
anything is queued. ``dreamreel generate --lora NAME[:SCALE]`` renders with one, and refuses an unlisted one.
(That an adapter changes a worker's clip, and is gone for the next job, is tests/unit/test_lora.py's.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lumaai
import pytest
from lumaai import LumaAI
from tests.conftest import ServerProcess, run_cli

from dreamreel.engine.tiny_lora import build_tiny_lora
from dreamreel.media.probe import read_frames


@pytest.fixture(scope="module")
def models_config(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("lora-config")
    lora = build_tiny_lora(tiny_model_dir, root / "loras" / "tiny.safetensors")
    config = root / "models.toml"
    config.write_text(f'[models.ray-2]\nfamily = "ltx-condition"\npath = "{tiny_model_dir}"\nsteps = 2\n\n'
                      f'[models.ray-2.loras.tiny]\npath = "{lora}"\nscale = 1.0\n')
    return config


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, models_config: Path,
        ) -> Iterator[ServerProcess]:
    """No workers: the refusal happens at submission, and nothing leaves the queue."""
    server = ServerProcess(tmp_path_factory.mktemp("lora-server") / "data", tiny_model_dir, workers=0,
                           extra_env={"DREAMREEL_MODELS_CONFIG": str(models_config)}).start()
    yield server
    server.stop()


def test_an_adapter_the_config_does_not_list_is_a_4xx_naming_the_configured_ones(api: ServerProcess) -> None:
    luma = LumaAI(auth_token="local-key", base_url=f"{api.url}/dream-machine/v1", max_retries=0)
    with pytest.raises(lumaai.UnprocessableEntityError) as refused:
        luma.generations.create(model="ray-2", prompt="x", extra_body={"loras": [{"name": "pixel-art"}]})
    assert "no LoRA adapter 'pixel-art'; configured: tiny" in refused.value.response.text
    queued = luma.generations.create(model="ray-2", prompt="x", extra_body={"loras": [{"name": "tiny"}]})
    assert queued.state == "queued"
    assert luma.generations.list().count == 1  # the refused one was never stored


def test_generate_renders_with_an_adapter_and_refuses_an_unlisted_one(models_config: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """``dreamreel generate`` run in this process (its argument parsing and code path; no second torch import)."""
    def generate(out: Path, *flags: str) -> int:
        return run_cli(["generate", "a red ball rolls on sand", "--models-config", str(models_config),
                        "--size", "128x128", "--seconds", "1", "--seed", "3", "-o", str(out), *flags])

    assert generate(tmp_path / "never.mp4", "--lora", "pixel-art") == 2
    assert "no LoRA adapter 'pixel-art'; configured: tiny" in capsys.readouterr().err
    assert not (tmp_path / "never.mp4").exists()
    assert generate(tmp_path / "adapted.mp4", "--lora", "tiny:1.5") == 0
    assert read_frames(tmp_path / "adapted.mp4").shape == (24, 128, 128, 3)
