"""``dreamreel models pull|check|list`` as an operator runs them: the real CLI in subprocesses, the real
``huggingface_hub`` client pulling from a local hub (``tests/hubserver.py``) through ``HF_ENDPOINT``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save
from tests.conftest import DREAMREEL
from tests.hubserver import HubServer, Seen

REPO = "Lightricks/LTX-Video-tiny"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
UPSAMPLER = "ltxv-spatial-upscaler-0.9.7.safetensors"
CLIENT_CHUNK = 10 * 2**20
"""huggingface_hub writes a download in 10 MiB chunks (``constants.DOWNLOAD_CHUNK_SIZE``) and resumes after a
drop from the last chunk written: the file cut in the resume test is larger than one chunk."""
NOT_NEEDED = {
    "ltx-video-2b-v0.9.safetensors": b"\0" * 4096,  # a root-level original checkpoint
    "transformer/diffusion_pytorch_model.bin": b"\0" * 2048,  # a pickled duplicate
    "transformer/diffusion_pytorch_model.fp16.safetensors": b"\0" * 2048,  # a dtype variant
    "vae/diffusion_pytorch_model.gguf": b"\0" * 1024,
    "README.md": b"# tiny\n",
    "media/trailer.mp4": b"\0" * 1024,
}


@pytest.fixture(scope="module")
def hub(tiny_model_dir: Path) -> Iterator[HubServer]:
    # The root-level latent upsampler LTX checkpoints carry (pulled for the family): random, so a resume from
    # the wrong offset could not give the same bytes.
    upsampler = save({"weight": np.random.default_rng(0).standard_normal(CLIENT_CHUNK // 4 + 2**16, np.float32)})
    server = HubServer.from_dir(REPO, COMMIT, tiny_model_dir, {UPSAMPLER: upsampler, **NOT_NEEDED}).start()
    yield server
    server.stop()


def hub_config(root: Path, revision: str = COMMIT, extra: str = "") -> Path:
    """A models config naming the hub checkpoint ``ray-2``, checkpoints under ``root/ckpt``, plus ``extra``."""
    config = root / "models.toml"
    config.write_text(f'checkpoints_dir = "ckpt"\n\n[models.ray-2]\nfamily = "ltx-condition"\nrepo = "{REPO}"\n'
                      f'revision = "{revision}"\n\n{extra}')
    return config


def run(args: list[str], config: Path, hub: HubServer | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "DREAMREEL_"))}
    env |= {"HF_HOME": str(config.parent / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    if hub is not None:
        env["HF_ENDPOINT"] = hub.url
    return subprocess.run([DREAMREEL, "models", *args, "--models-config", str(config)], env=env,
                          capture_output=True, text=True, timeout=120)


def pulled_dir(root: Path) -> Path:
    return root / "ckpt" / f"{REPO.replace('/', '--')}@{COMMIT[:12]}"


def checkpoint_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".cache" not in p.relative_to(root).parts}


@dataclass(frozen=True)
class Operator:
    """One operator's models config (the hub checkpoint ``ray-2``, pulled once, and three broken local
    checkpoints), the pull's outcome and the requests the hub saw for it."""

    root: Path
    config: Path
    pull: subprocess.CompletedProcess
    requests: list[Seen]


@pytest.fixture(scope="module")
def operator(hub: HubServer, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Operator:
    root = tmp_path_factory.mktemp("operator")
    missing, wrong = root / "missing", root / "wrong"
    shutil.copytree(tiny_model_dir, missing)
    (missing / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    shutil.copytree(tiny_model_dir, wrong)
    index = json.loads((wrong / "model_index.json").read_text())
    index["transformer"] = ["diffusers", "WanTransformer3DModel"]
    (wrong / "model_index.json").write_text(json.dumps(index))
    config = hub_config(root, extra="\n".join(
        f'[models.{name}]\nfamily = "ltx-condition"\npath = "{path}"\n{more}\n'
        for name, path, more in (("missing-file", missing, ""), ("wrong-class", wrong, ""),
                                 ("tight-budget", tiny_model_dir, "memory_budget_gb = 0.01"))))
    hub.take_seen()
    pull = run(["pull", "ray-2", "--no-progress"], config, hub)
    return Operator(root, config, pull, hub.take_seen())


def test_pull_fetches_the_family_files_at_the_pinned_commit(operator: Operator, hub: HubServer) -> None:
    assert operator.pull.returncode == 0, operator.pull.stderr
    target = pulled_dir(operator.root)
    assert f"into {target}" in operator.pull.stdout
    wanted = {name: data for name, data in hub.files.items() if name not in NOT_NEEDED}
    assert checkpoint_files(target) == wanted  # every file the family loads, byte for byte, and nothing else
    fetched = {seen.path for seen in operator.requests if seen.method == "GET" and "/resolve/" in seen.path}
    assert fetched == {f"/{REPO}/resolve/{COMMIT}/{name}" for name in wanted}


def test_check_passes_the_pulled_checkpoint_and_names_each_problem_of_the_broken_ones(operator: Operator) -> None:
    checked = run(["check", "ray-2", "missing-file", "wrong-class", "tight-budget"], operator.config)
    assert checked.returncode == 1  # one or more checkpoints cannot be served
    assert "ray-2: ok" in checked.stdout
    for fact in ("LTXConditionPipeline", "LTXVideoTransformer3DModel", "float32", "resident", "540p", "4k"):
        assert fact in checked.stdout
    errors = [line for line in checked.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3, checked.stderr
    assert errors[0].startswith("error: missing-file: vae: no weights: vae/diffusion_pytorch_model.safetensors")
    assert errors[1].startswith("error: wrong-class: transformer: wrong class WanTransformer3DModel")
    assert "LTXVideoTransformer3DModel" in errors[1]
    assert errors[2].startswith("error: tight-budget: memory budget 10.24 MiB (memory_budget_gb) is too small")
    assert "GiB at the smallest size (540p" in errors[2]
    for verdict in ("missing-file: 1 problem(s)", "wrong-class: 1 problem(s)", "tight-budget: 1 problem(s)"):
        assert verdict in checked.stdout


def test_list_shows_each_configured_name(operator: Operator) -> None:
    listed = run(["list"], operator.config)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
            for line in listed.stdout.splitlines() if line.startswith("│")}
    assert set(rows) == {"ray-2", "missing-file", "wrong-class", "tight-budget", "ray-flash-2"}
    assert rows["ray-2"] == ["ltx-condition", REPO, COMMIT[:12], "cpu", "float32", "yes", "quality", "*"]
    assert rows["wrong-class"][1] == str(operator.root / "wrong") and rows["wrong-class"][5:] == ["yes", "quality", ""]
    assert rows["missing-file"][5] == "yes"  # its model_index.json is there; `check` says what is not
    assert rows["ray-flash-2"][-2:] == ["fast", "= ray-2"]  # a built-in name the config leaves to its default


def test_an_interrupted_download_resumes_with_a_range_request(hub: HubServer, tmp_path: Path) -> None:
    config = hub_config(tmp_path)
    cut = CLIENT_CHUNK + 2**17
    assert len(hub.files[UPSAMPLER]) > cut
    hub.take_seen()
    hub.cut_next_get(UPSAMPLER, cut)
    pulled = run(["pull", "ray-2", "--no-progress"], config, hub)
    assert pulled.returncode == 0, pulled.stderr
    assert "peer closed connection" in pulled.stderr  # the client saw the drop, and went on

    gets = [seen for seen in hub.take_seen() if seen.method == "GET" and seen.path.endswith(UPSAMPLER)]
    assert [seen.range for seen in gets] == [None, f"bytes={CLIENT_CHUNK}-"]  # resumed past byte 0
    assert (pulled_dir(tmp_path) / UPSAMPLER).read_bytes() == hub.files[UPSAMPLER]

    again = run(["pull", "ray-2", "--no-progress"], config, hub)
    assert again.returncode == 0, again.stderr
    assert not [seen for seen in hub.take_seen() if "/resolve/" in seen.path]  # complete files are kept


def test_a_revision_the_hub_resolves_to_another_commit_is_refused(hub: HubServer, tmp_path: Path) -> None:
    config = hub_config(tmp_path, revision=OTHER_COMMIT)
    hub.take_seen()
    pulled = run(["pull", "ray-2", "--no-progress"], config, hub)
    assert pulled.returncode == 1
    assert "refusing" in pulled.stderr and COMMIT in pulled.stderr and OTHER_COMMIT in pulled.stderr
    assert not (tmp_path / "ckpt").exists()
    asked = [seen.path for seen in hub.take_seen() if f"/{REPO}/" in seen.path]
    assert asked == [f"/api/models/{REPO}/revision/{OTHER_COMMIT}"]  # no file list, no file


def test_calibrate_prints_a_magcache_table_the_config_reader_takes(tmp_path: Path) -> None:
    """``dreamreel models calibrate`` on the embedded model: its table, pasted under a model, reads back as a
    magcache with one ratio per calibration step."""
    import tomllib

    from dreamreel.engine.catalog import parse_catalog

    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMREEL_")}
    result = subprocess.run([DREAMREEL, "models", "calibrate", "ray-2", "--steps", "4", "--data-dir",
                             str(tmp_path / "data")], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "MagCache Calibration Results" not in result.stdout + result.stderr  # diffusers' own print is kept out
    table = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    assert table[0] == "[models.ray-2.speeds.balanced]"
    config = '[models.ray-2]\nfamily = "ltx-condition"\npath = "m"\n' + "\n".join(table) + "\n"
    cache = parse_catalog(tomllib.loads(config), tmp_path / "models.toml").entry("ray-2").speeds["balanced"].cache
    assert cache.kind == "magcache" and len(cache.ratios) == 4 and cache.ratios[0] == 1.0
