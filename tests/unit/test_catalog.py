"""The models config: names, built-in aliases, the default, the device override, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from dreamreel.config import Settings
from dreamreel.engine.catalog import CatalogError, load_catalog
from dreamreel.engine.registry import FAMILIES

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def test_configured_names_resolve_and_builtins_mean_the_default(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, f"""
default = "big"
checkpoints_dir = "/srv/ckpt"
[models.big]
family = "wan-vace"
repo = "Wan-AI/Wan2.1-VACE-1.3B-diffusers"
revision = "{COMMIT}"
device = "cuda:1"
dtype = "bfloat16"
steps = 30
memory_budget_gb = 24
short_side = 480
fps = 16
[models.big.loras.style]
path = "loras/style.safetensors"
scale = 0.7
[models.ray-flash-2]
family = "ltx-condition"
path = "ltx"
steps = 8
"""), known_families=FAMILIES)
    assert catalog.default == "big"
    assert catalog.names == ("big", "ray-flash-2", "ray-2")
    big = catalog.entry("big")
    assert big.path == Path(f"/srv/ckpt/Wan-AI--Wan2.1-VACE-1.3B-diffusers@{COMMIT[:12]}")
    assert (big.device, big.dtype, big.steps, big.memory_budget_gb) == ("cuda:1", "bfloat16", 30, 24.0)
    assert big.native == (("short_side", 480), ("fps", 16))
    assert big.loras["style"].path == tmp_path / "loras" / "style.safetensors" and big.loras["style"].scale == 0.7
    # A configured built-in name keeps its own meaning; the one left out means the default model.
    assert catalog.entry("ray-flash-2").family == "ltx-condition" and catalog.entry("ray-flash-2").steps == 8
    assert catalog.entry("ray-flash-2").path == tmp_path / "ltx"
    assert catalog.entry("ray-2").spec == big.spec
    assert catalog.entry(None).name == "big"
    with pytest.raises(KeyError, match="serves: big, ray-flash-2, ray-2"):
        catalog.entry("nope")
    # A worker's --device wins over the config, for every model of that process.
    moved = catalog.with_device("cpu")
    assert {entry.device for entry in moved.models.values()} == {"cpu"}


@pytest.mark.parametrize(("body", "message"), [
    ('[models.a]\nfamily = "ltx-condition"\npath = "x"\nsteps = 0', "steps: 1..1000"),
    ('[models.a]\nfamily = "nope"\npath = "x"', "unknown family 'nope'"),
    ('[models.a]\nfamily = "ltx-condition"', "exactly one of path"),
    ('[models.a]\nfamily = "ltx-condition"\nrepo = "o/r"\nrevision = "main"', "40-character commit"),
    ('[models.a]\nfamily = "ltx-condition"\npath = "x"\ncolour = 1', "unknown key(s) colour"),
    ('[models.A]\nfamily = "ltx-condition"\npath = "x"', "lower-case"),
    ('default = "b"\n[models.a]\nfamily = "ltx-condition"\npath = "x"', "default 'b' is not one of"),
    ('[models.a]\nfamily = "ltx-condition"\npath = "x"\ndtype = "float16"', "dtype: one of"),
    ('[models.a]\nfamily = "ltx-condition"\npath = "x"\nmemory_budget_gb = 0', "must be positive"),
    ('models = 3', "tables are required"),
    ('[models.a\n', "models.toml"),
])
def test_a_bad_config_is_refused_naming_the_key(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_catalog(write(tmp_path, body), known_families=FAMILIES)


def test_without_a_config_one_checkpoint_serves_the_builtin_names(tmp_path: Path) -> None:
    catalog = Settings(model_dir=tmp_path, device="cuda:0", steps=3).catalog()
    assert catalog.names == ("ray-2", "ray-flash-2") and catalog.source is None
    assert {(entry.path, entry.device, entry.steps) for entry in catalog.models.values()} == {(tmp_path, "cuda:0", 3)}


def test_the_configs_native_grid_keys_override_the_checkpoints(tmp_path: Path, tiny_model_dir: Path) -> None:
    from dreamreel.engine.registry import load_backend

    catalog = load_catalog(write(tmp_path, f"""
[models.a]
family = "ltx-condition"
path = "{tiny_model_dir}"
short_side = 64
fps = 12
"""), known_families=FAMILIES)
    grid = load_backend(catalog.entry("a").spec).native_grid()
    assert (grid.short_side, grid.fps) == (64, 12)
    bare = write(tmp_path, f'[models.a]\nfamily = "ltx-condition"\npath = "{tiny_model_dir}"')
    plain = load_backend(load_catalog(bare, known_families=FAMILIES).entry("a").spec).native_grid()
    assert (plain.short_side, plain.fps) != (64, 12)
