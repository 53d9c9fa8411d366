"""The tiny LTX-2 keeps the public checkpoint's shape-defining facts (``real_configs/ltx2.json``) while shrinking
depth and width, loads offline as an ``LTX2ConditionPipeline``, and its backend's grid and sound follow from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dreamreel.engine.backends.base import EditGuide
from dreamreel.engine.backends.ltx2 import LTX2Backend, latent_index
from dreamreel.engine.plan import Condition, Plan
from dreamreel.engine.tiny_ltx2 import build_tiny_ltx2, real_config, tiny_configs

SHAPE_FACTS = {
    "transformer": ("in_channels", "out_channels", "patch_size", "patch_size_t", "vae_scale_factors",
                    "audio_in_channels", "audio_out_channels", "audio_patch_size", "audio_patch_size_t",
                    "audio_scale_factor", "audio_sampling_rate", "audio_hop_length", "rope_type", "qk_norm"),
    "vae": ("latent_channels", "patch_size", "patch_size_t", "down_block_types", "downsample_type", "upsample_type",
            "spatio_temporal_scaling", "decoder_spatio_temporal_scaling", "upsample_factor",
            "spatial_compression_ratio", "temporal_compression_ratio", "encoder_causal", "decoder_causal",
            "timestep_conditioning"),
    "audio_vae": ("base_channels", "output_channels", "in_channels", "latent_channels", "sample_rate",
                  "mel_hop_length", "mel_bins", "causality_axis", "is_causal", "double_z"),
    "vocoder": ("in_channels", "out_channels", "upsample_factors", "upsample_kernel_sizes", "output_sampling_rate"),
    "connectors": ("video_connector_num_learnable_registers", "audio_connector_num_learnable_registers",
                   "rope_type", "per_modality_projections"),
}


def test_real_config_names_its_source() -> None:
    facts = real_config()
    assert facts["family"] == "ltx2" and facts["source"]["repository"] == "https://huggingface.co/Lightricks/LTX-2"
    assert any("convert_ltx2_to_diffusers.py" in origin for origin in facts["source"]["defined_by"])


def test_shape_facts_are_the_real_ones_and_the_rest_is_smaller() -> None:
    real = real_config()
    tiny = tiny_configs(real)
    for component, keys in SHAPE_FACTS.items():
        for key in keys:
            assert tiny[component][key] == real[component][key], (component, key)
    assert tiny["scheduler"] == {k: v for k, v in real["scheduler"].items() if k != "class"}
    assert tiny["transformer"]["num_layers"] < real["transformer"]["num_layers"]
    assert tiny["vae"]["block_out_channels"][-1] < real["vae"]["block_out_channels"][-1]
    # The couplings between components hold: text width -> connectors -> transformer; packed audio channels.
    connectors = tiny["connectors"]
    assert connectors["caption_channels"] == tiny["transformer"]["caption_channels"]
    assert connectors["video_connector_num_attention_heads"] * connectors["video_connector_attention_head_dim"] \
        == connectors["caption_channels"]
    audio = tiny["audio_vae"]
    assert audio["latent_channels"] * audio["mel_bins"] // 4 == tiny["transformer"]["audio_in_channels"]
    assert audio["output_channels"] * audio["mel_bins"] == tiny["vocoder"]["in_channels"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_ltx2(tmp_path_factory.mktemp("tiny-ltx2"), seed=0)


@pytest.fixture(scope="module")
def backend(model_dir: Path) -> LTX2Backend:
    return LTX2Backend(model_dir)


def test_built_model_loads_offline_with_the_real_grid(model_dir: Path, backend: LTX2Backend) -> None:
    assert json.loads((model_dir / "dreamreel.json").read_text())["family"] == "ltx2"
    grid = backend.native_grid()
    assert (grid.size_multiple, grid.frame_multiple, backend.sample_rate) == (32, 8, 24000)
    pipe = backend.pipe
    assert (pipe.vae_spatial_compression_ratio, pipe.vae_temporal_compression_ratio) == (32, 8)
    assert pipe.tokenizer.padding_side == "left" and pipe.tokenizer.model_max_length == 128
    ids = pipe.tokenizer("A red ball rolls, Zebra!").input_ids
    assert pipe.tokenizer.unk_token_id not in ids


def test_keyframes_land_on_their_pixel_frame_and_edits_hold_the_source(backend: LTX2Backend) -> None:
    """Every clip comes with stereo sound of its length; an end image and a reverse-extended clip go in at the
    latent index that keeps all their frames, placed at their exact pixel frame; modify and reframe run through
    the latent hold; add audio keeps the picture."""
    assert [latent_index(frame, 8) for frame in (0, 1, 8, 9, 16, 24)] == [0, 1, 1, 2, 2, 3]
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (17, 64, 64, 3), dtype=np.uint8)
    base = dict(prompt="a kite", seed=1, native_width=64, native_height=64, native_frames=17, native_fps=8,
                output_width=64, output_height=64, output_frames=48, output_fps=24, num_inference_steps=2,
                guidance_scale=1.0)

    def run(conditions: tuple = (), pixels: tuple = (), guide: EditGuide | None = None) -> np.ndarray:
        plan = Plan(**base, conditions=conditions)  # type: ignore[arg-type]
        return backend.generate(plan, lambda done, total: None, lambda: False, list(pixels), guide=guide)

    frames = run((Condition("frame0", "image", 0), Condition("frame1", "image", 16)), (source[:1], source[-1:]))
    assert frames.shape == source.shape and frames.dtype == np.uint8
    sound = backend.last_audio
    assert sound is not None and (sound.channels, sound.sample_rate) == (2, 24000)
    assert abs(sound.duration_s - 17 / 8) < 0.1
    assert backend.pipe.keyframe_pixels == {9: 16}  # latent 2 starts at pixel 9; the image is the last frame
    run((Condition("frame1", "video", 8, 9),), (source[:9],))
    assert backend.pipe.keyframe_pixels == {1: 8}  # latent 1 keeps all 9 frames; the clip starts at frame 8
    mask = np.zeros((64, 64), dtype=np.float32)
    mask[:, 16:48] = 1.0
    for guide in (EditGuide(frames=source, strength=0.5), EditGuide(frames=source, mask=mask)):
        assert run(guide=guide).shape == source.shape
    kept = run(guide=EditGuide(frames=source, sound_only=True))
    assert np.array_equal(kept, backend.round_trip(source)), "add audio changed the picture"
    assert backend.last_audio is not None and abs(backend.last_audio.duration_s - 17 / 8) < 0.1
