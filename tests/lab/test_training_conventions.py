"""The flow stage's noise/target/timestep conventions match what LTXConditionPipeline samples with.

An oracle transformer that answers exactly the training target for a known clean latent must make
the real pipeline land on that latent; a sign or timestep-scale mismatch would not.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import LTXConditionPipeline

from dreamreel_lab.training.flow_stage import SAMPLER_SIGMAS, add_noise, pack, sample_sigmas, velocity_target


def test_oracle_with_training_target_recovers_the_clean_latent(tiny_model_dir) -> None:
    pipe = LTXConditionPipeline.from_pretrained(tiny_model_dir)
    pipe.set_progress_bar_config(disable=True)
    frames, height, width = 9, 32, 64
    latent_shape = (1, pipe.transformer.config.in_channels, (frames - 1) // pipe.vae_temporal_compression_ratio + 1,
                    height // pipe.vae_spatial_compression_ratio, width // pipe.vae_spatial_compression_ratio)
    x0 = torch.randn(latent_shape, generator=torch.Generator().manual_seed(0))
    x0_tokens = pack(x0, pipe.transformer.config.patch_size)

    def oracle(hidden_states, timestep, **_):
        sigma = (timestep / 1000).unsqueeze(-1).clamp(min=1e-4)
        # Invert add_noise for the noise that produced hidden_states, then answer the training target.
        noise = (hidden_states - (1 - sigma) * x0_tokens) / sigma
        assert torch.allclose(add_noise(x0_tokens, noise, sigma), hidden_states, atol=1e-4)
        return (velocity_target(x0_tokens, noise),)

    pipe.transformer.forward = oracle
    out = pipe(prompt="a red ball", height=height, width=width, num_frames=frames, num_inference_steps=6,
               guidance_scale=1.0, output_type="latent", generator=torch.Generator().manual_seed(1)).frames
    assert out.shape == x0.shape
    assert torch.allclose(out, x0, atol=1e-3), (out - x0).abs().max()


def test_object_mask_pools_onto_the_latent_grid_the_way_the_vae_groups_frames() -> None:
    """Frame 0 is latent frame 0 alone; frames 1-4 are latent frame 1; 16 x 16 pixels per cell."""
    import numpy as np

    from dreamreel_lab.training.latents_stage import latent_object_mask

    masks = np.zeros((1, 9, 32, 48), dtype=bool)
    masks[0, 0, 0, 0] = True  # frame 0, top-left cell
    masks[0, 4, 20, 40] = True  # frame 4 -> latent frame 1, cell (1, 2)
    masks[0, 5, 31, 17] = True  # frame 5 -> latent frame 2, cell (1, 1)
    cells = latent_object_mask(masks)
    assert cells.shape == (1, 3, 2, 3)
    assert sorted(map(tuple, cells[0].nonzero().tolist())) == [(0, 0, 0), (1, 1, 2), (2, 1, 1)]


def test_vae_crops_cut_the_same_window_from_frames_and_masks() -> None:
    """The VAE trains on crops; a mask shifted against its frames would weight the wrong pixels."""
    import numpy as np

    from dreamreel_lab.training.autoencoder import random_crop

    frames = np.arange(2 * 3 * 96 * 160 * 3, dtype=np.int64).reshape(2, 3, 96, 160, 3)
    masks = (frames[..., 0] % 7) == 0
    windows = set()
    for seed in range(6):
        cropped, cropped_masks = random_crop(frames, masks, 64, np.random.default_rng(seed))
        assert cropped.shape == (2, 3, 64, 64, 3) and cropped_masks.shape == (2, 3, 64, 64)
        top, left = divmod(int(cropped[0, 0, 0, 0, 0]) // 3, 160)
        assert np.array_equal(cropped, frames[:, :, top:top + 64, left:left + 64])
        assert np.array_equal(cropped_masks, masks[:, :, top:top + 64, left:left + 64])
        windows.add((top, left))
    assert len(windows) > 1  # the window moves
    same, same_masks = random_crop(frames, masks, None, np.random.default_rng(0))
    assert same is frames and same_masks is masks


def test_training_sigmas_cover_where_the_pipeline_samples() -> None:
    """Half the sampler's steps lie in [0.975, 1]; logit-normal alone put 0.5 % of training there."""
    assert len(SAMPLER_SIGMAS) == 20 and (SAMPLER_SIGMAS >= 0.975).sum() == 11
    sigmas = sample_sigmas(torch.Generator().manual_seed(0), 20_000)
    assert sigmas.min() > 0 and sigmas.max() <= 1
    assert (sigmas >= 0.975).float().mean() > 0.08
    assert (sigmas < 0.5).float().mean() > 0.3  # low noise, where detail is learned, keeps its share


@pytest.mark.parametrize("mode", ["last", "trailing"])
def test_prepended_conditions_reach_the_transformer_as_training_lays_them_out(mode: str) -> None:
    """An end keyframe (``last``) and a reverse-extend clip (``trailing``) go through the real pipeline
    with the shipped VAE; the tokens it prepends, their positions and timesteps must be what
    ``flow_loss`` builds from the latent cache's ``last``/``tail`` encodings of the same pixels."""
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
    from PIL import Image

    from dreamreel.config import REPO_ROOT
    from dreamreel_lab.training.architecture import NATIVE
    from dreamreel_lab.training.data import to_video_tensor
    from dreamreel_lab.training.flow_stage import LatentBatch, extra_condition, video_coords
    from dreamreel_lab.training.latents_stage import TAIL_FRAMES

    pipe = LTXConditionPipeline.from_pretrained(REPO_ROOT / "models" / "embedded")
    pipe.set_progress_bar_config(disable=True)
    width, height = 160, 96
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (NATIVE.frames, height, width, 3), dtype=np.uint8)
    seen: dict[str, torch.Tensor] = {}

    def recorder(hidden_states, video_coords, timestep, **_):
        seen.update(tokens=hidden_states, coords=video_coords, timestep=timestep)
        return (torch.zeros_like(hidden_states),)

    pipe.transformer.forward = recorder
    if mode == "last":
        condition = LTXVideoCondition(image=Image.fromarray(clip[-1]), frame_index=NATIVE.frames - 1)
    else:
        tail = [Image.fromarray(f) for f in clip[-TAIL_FRAMES:]]
        condition = LTXVideoCondition(video=tail, frame_index=NATIVE.frames - TAIL_FRAMES)
    pipe(conditions=[condition], prompt="a red ball", height=height, width=width, num_frames=NATIVE.frames,
         frame_rate=NATIVE.fps, num_inference_steps=1, guidance_scale=1.0, image_cond_noise_scale=0.0,
         output_type="latent", generator=torch.Generator().manual_seed(0))

    # What the latents stage caches for the same pixels: the posterior mean, normalised.
    vae = pipe.vae
    mean = vae.latents_mean.view(1, -1, 1, 1, 1)
    std = vae.latents_std.view(1, -1, 1, 1, 1)
    with torch.no_grad():
        def encode(frames: np.ndarray) -> torch.Tensor:
            return (vae.encode(to_video_tensor(frames[None])).latent_dist.mode() - mean) / std

        last, tail = encode(clip[-1:]), encode(clip[-TAIL_FRAMES:])
    grid = (NATIVE.frames - 1) // 4 + 1, height // 16, width // 16
    data = LatentBatch(torch.zeros(1, last.shape[1], *grid), last, tail, torch.zeros(1, *grid, dtype=torch.bool),
                       [""])
    cond, frame_index = extra_condition(data, mode)
    extra = cond.shape[2] * grid[1] * grid[2]
    expected_coords = torch.cat([video_coords(1, cond.shape[2], grid[1], grid[2], frame_index=frame_index),
                                 video_coords(1, *grid)], dim=2)
    assert seen["coords"].shape == expected_coords.shape
    assert torch.allclose(seen["coords"].float(), expected_coords)
    assert torch.all(seen["timestep"][:, :extra] == 0) and torch.all(seen["timestep"][:, extra:] > 0)
    prepended = seen["tokens"][:, :extra]
    assert torch.allclose(prepended, pack(cond), atol=2e-3), (prepended - pack(cond)).abs().max()
