"""Tiny models built from public checkpoints' own configs keep the shapes that matter: the committed facts name
their source, the built model's config says what the real one says where shapes are decided, its VAE really
compresses as the real one does, and the family's backend loads it onto the real native grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers

from dreamreel.engine.registry import BACKENDS, ModelSpec, load_backend
from dreamreel.engine.tiny_real import (
    FAMILY_CONFIGS,
    build_from_real_config,
    frame_multiple,
    is_wan,
    real_config,
    real_config_names,
    size_multiple,
)

NAMES = tuple(name for name in real_config_names() if name != "ltx2")
"""Every real config this module builds (``ltx2`` is :mod:`dreamreel.engine.tiny_ltx2`'s, tested beside it)."""

EXPECTED = {
    "ltx-video-0.9.5-2b", "ltx-video-0.9.7-13b-distilled", "ltx-video-0.9.8-13b-distilled", "wan2.1-t2v-1.3b",
    "wan2.1-i2v-14b-720p", "wan2.1-flf2v-14b-720p", "wan2.1-vace-1.3b", "wan2.2-ti2v-5b", "wan2.2-t2v-a14b",
    "wan2.2-i2v-a14b",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("real-configs")
    return {name: build_from_real_config(name, root / name, seed=0) for name in NAMES}


def _config(model_dir: Path, component: str, file: str = "config.json") -> dict:
    return json.loads((model_dir / component / file).read_text())


def test_every_supported_checkpoint_has_facts_naming_their_source() -> None:
    assert set(NAMES) == EXPECTED
    for name in NAMES:
        facts = real_config(name)
        assert facts["family"] in BACKENDS, name
        source = facts["source"]
        assert source["repository"].startswith("https://huggingface.co/"), name
        assert facts["checkpoint"] in source["repository"], name
        # Each fact's origin is pinned: a repository, a 40-hex commit and a path.
        for origin in source["defined_by"]:
            repo_commit_path = origin.split(" ", 1)[0]
            assert repo_commit_path.startswith("github:"), (name, origin)
            commit = repo_commit_path.split("@", 1)[1].split(":", 1)[0]
            assert len(commit) == 40 and int(commit, 16) >= 0, (name, origin)
        assert {"fps", "sizes", "max_frames", "steps", "guidance"} <= set(facts["native"]), name
        for width, height in facts["native"]["sizes"]:
            assert width % size_multiple(facts) == 0 and height % size_multiple(facts) == 0, (name, width, height)
        assert (facts["native"]["max_frames"] - 1) % frame_multiple(facts) == 0, name
    assert set(FAMILY_CONFIGS) == {"wan22-ti2v", "wan22-t2v", "wan22-i2v"}
    assert all(real_config(name)["family"] == family for family, name in FAMILY_CONFIGS.items())
    with pytest.raises(ValueError, match="no real config 'wan3'"):
        real_config("wan3")


def _same_class(real: str, saved: list) -> bool:
    """transformers 5 has one T5 tokenizer class (``T5TokenizerFast`` is ``T5Tokenizer``), and saves a CLIP
    image processor as its PIL variant where torchvision is absent: the same component either way."""
    library, name = saved
    if name == real:
        return True
    return library == "transformers" and (getattr(transformers, real, None) is getattr(transformers, name, 0)
                                          or name == f"{real}Pil")


@pytest.mark.parametrize("name", NAMES)
def test_the_tiny_model_keeps_the_real_shapes(name: str, built: dict[str, Path]) -> None:
    facts, model_dir = real_config(name), built[name]
    index = json.loads((model_dir / "model_index.json").read_text())
    assert index["_class_name"] == facts["pipeline"]["class"]
    for component, cls in facts["components"].items():
        assert _same_class(cls, index[component]), (component, cls, index[component])
    for flag in ("boundary_ratio", "expand_timesteps"):
        if flag in facts["pipeline"] and flag in index:
            assert index[flag] == facts["pipeline"][flag], flag
    assert (index.get("transformer_2", [None, None])[1] is not None) == ("transformer_2" in facts["components"])
    assert sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file()) < 20_000_000

    real, tiny = facts["transformer"], _config(model_dir, "transformer")
    assert tiny["num_layers"] == 2 < real["num_layers"]
    keep = ["in_channels", "out_channels", "patch_size"] + (["patch_size_t"] if not is_wan(facts) else
                                                             ["qk_norm", "cross_attn_norm", "vace_in_channels"])
    for key in keep:
        assert tiny.get(key) == real.get(key), key
    if is_wan(facts):
        assert (tiny["image_dim"] is None) == (real["image_dim"] is None)
        assert (tiny["pos_embed_seq_len"] is None) == (real["pos_embed_seq_len"] is None)
        if "transformer_2" in facts["components"]:
            assert _config(model_dir, "transformer_2") == tiny

    real_vae, tiny_vae = facts["vae"], _config(model_dir, "vae")
    shape_keys = (["z_dim", "temperal_downsample", "is_residual", "in_channels", "out_channels", "patch_size",
                   "scale_factor_spatial", "scale_factor_temporal", "dim_mult"] if is_wan(facts) else
                  ["latent_channels", "patch_size", "patch_size_t", "down_block_types", "downsample_type",
                   "spatio_temporal_scaling", "decoder_spatio_temporal_scaling", "upsample_factor",
                   "spatial_compression_ratio", "temporal_compression_ratio", "timestep_conditioning"])
    for key in shape_keys:
        assert tiny_vae[key] == real_vae[key], key
    if is_wan(facts):
        assert len(tiny_vae["latents_mean"]) == len(tiny_vae["latents_std"]) == real_vae["z_dim"]
        if "latents_mean" in real_vae:
            assert tiny_vae["latents_mean"] == real_vae["latents_mean"]

    scheduler = _config(model_dir, "scheduler", "scheduler_config.json")
    assert scheduler["_class_name"] == facts["scheduler"]["class"]
    assert all(scheduler[key] == value for key, value in facts["scheduler"].items() if key != "class")

    settings = json.loads((model_dir / "dreamreel.json").read_text())
    assert settings["family"] == facts["family"] and settings["fps"] == facts["native"]["fps"]
    if "latent_upsampler" in facts:
        upsampler = _config(model_dir, "latent_upsampler")
        assert upsampler["in_channels"] == facts["latent_upsampler"]["in_channels"] == real["in_channels"]
        assert upsampler["spatial_upsample"] and not upsampler["temporal_upsample"]


@pytest.mark.parametrize("name", NAMES)
def test_the_vae_compresses_and_the_backend_plans_as_the_real_one(name: str, built: dict[str, Path]) -> None:
    """The compression is measured, not read back: a clip of two latent frames and two latent pixels a side
    goes through the tiny VAE, and the family's backend derives the real native grid from the loaded model."""
    facts = real_config(name)
    backend = load_backend(ModelSpec(family=facts["family"], path=built[name]))
    grid = backend.native_grid()
    assert (grid.size_multiple, grid.frame_multiple) == (size_multiple(facts), frame_multiple(facts))
    assert grid.fps == facts["native"]["fps"]

    vae = backend.pipe.vae
    spatial = (facts["vae"]["scale_factor_spatial"] if is_wan(facts)
               else facts["vae"]["spatial_compression_ratio"])
    temporal = (facts["vae"]["scale_factor_temporal"] if is_wan(facts)
                else facts["vae"]["temporal_compression_ratio"])
    clip = torch.zeros(1, 3, temporal + 1, 2 * spatial, 2 * spatial)
    with torch.inference_mode():
        latents = vae.encode(clip).latent_dist.mode()
    channels = facts["vae"]["z_dim"] if is_wan(facts) else facts["vae"]["latent_channels"]
    assert tuple(latents.shape) == (1, channels, 2, 2, 2)


def test_the_cli_builds_by_name_or_family_with_the_same_weights(built: dict[str, Path], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """``dreamreel build-tiny-model --real NAME`` (or ``--family`` of a family only real configs build): same name
    and seed, identical bytes; the two A14B experts differ from each other."""
    from tests.conftest import run_cli

    assert run_cli(["build-tiny-model", str(tmp_path / "again"), "--real", "wan2.2-t2v-a14b"]) == 0
    first, again = built["wan2.2-t2v-a14b"], tmp_path / "again"
    weights = "diffusion_pytorch_model.safetensors"
    assert (first / "transformer" / weights).read_bytes() == (again / "transformer" / weights).read_bytes()
    assert (first / "transformer" / weights).read_bytes() != (first / "transformer_2" / weights).read_bytes()
    assert run_cli(["build-tiny-model", str(tmp_path / "family"), "--family", "wan22-i2v"]) == 0
    assert json.loads((tmp_path / "family" / "dreamreel.json").read_text())["family"] == "wan22-i2v"
    assert run_cli(["build-tiny-model", str(tmp_path / "none"), "--real", "wan3"]) == 2
    assert "no real config 'wan3'" in capsys.readouterr().err
