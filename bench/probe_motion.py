"""How far along its path does an embedded model move an object, frame by frame, from a given first frame?

``dreamreel-lab eval --first-frame`` says *whether* the analyzer reads the asked-for motion (about 30 % on
the shipped model). This probe says *where it goes wrong*: for held-out still-camera clips of one object moving in a
straight line (left, right, up, down, the diagonals), the model gets the rendered first frame and the
caption, and for every later frame the probe finds the object by its colour and reports

* ``travel``: how far the object's centroid went along the true displacement, as a share of it (1 = where
  the renderer put it, 0 = it stayed at the start, negative = the wrong way),
* ``off``: the centroid's distance from the true one, in object radii,
* ``area``: the area of object-coloured pixels over the true object's area (a smear reads above 1).

Two ways to get the frames:

* ``predict``: one transformer pass with every later frame at noise level ``--sigma`` (1.0: pure noise), the
  model's own estimate of the clean clip (``x0 = x_sigma - sigma * v``) decoded by its VAE. This is the mean
  the model expects, before the sampler commits to anything: if it already stalls after a latent frame or
  two, the model does not know where the object goes; if it follows the path, the sampler loses it.
* ``sample``: the production backend's full sampling (what ``dreamreel-lab eval --first-frame`` scores).

Run: ``.venv/bin/python bench/probe_motion.py --model-dir models/embedded [--mode predict|sample]``
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from dreamreel.core.request import AspectRatio, GenerationRequest
from dreamreel.engine.backends.ltx import LTXConditionBackend
from dreamreel.engine.plan import plan_generation
from dreamreel_lab.training.data import draw_batch, to_video_tensor
from dreamreel_lab.training.evaluate import FIRST_FRAME
from dreamreel_lab.training.flow_stage import add_noise, pack, video_coords
from dreamreel_lab.training.sampler import load_backend
from dreamreel_lab.training.worlds import world_for
from dreamreel_lab.world.spec import DIRECTIONS

STRAIGHT = tuple(DIRECTIONS)


def object_stats(frames: np.ndarray, colour: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid (F, 2) as (x, y) and area (F,) of the pixels nearer ``colour`` than the background is.

    A pixel counts as object when its distance to the object's colour is under half the distance from that
    colour to the scenery's median colour: the world picks object colours that stand out from their scenery.
    """
    pixels = frames.astype(np.float32)
    near = np.linalg.norm(pixels - colour, axis=-1) < 0.5 * np.linalg.norm(background - colour)
    area = near.sum(axis=(1, 2)).astype(np.float64)
    ys, xs = np.mgrid[: frames.shape[1], : frames.shape[2]]
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (near * xs).sum(axis=(1, 2)) / area
        cy = (near * ys).sum(axis=(1, 2)) / area
    return np.stack([cx, cy], axis=1), area


@torch.no_grad()
def predicted_clips(backend: LTXConditionBackend, frames: np.ndarray, captions: list[str], sigma: float,
                    seed: int) -> np.ndarray:
    """The model's one-pass estimate of the clean clips given their first frames, decoded (uint8 like ``frames``)."""
    pipe = backend.pipe
    vae = pipe.vae
    x0 = pipe._normalize_latents(vae.encode(to_video_tensor(frames)).latent_dist.mode(),
                                 vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
    b, _, latent_frames, height, width = x0.shape
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    noisy = add_noise(x0, noise, torch.tensor(sigma))
    noisy[:, :, 0] = x0[:, :, 0]  # the given first frame, clean, as the pipeline places it
    timestep = torch.full((b, latent_frames, height * width), sigma * 1000.0)
    timestep[:, 0] = 0.0
    prompt_embeds, prompt_mask, _, _ = pipe.encode_prompt(captions, do_classifier_free_guidance=False,
                                                          max_sequence_length=48)
    velocity = pipe.transformer(hidden_states=pack(noisy), encoder_hidden_states=prompt_embeds,
                                timestep=timestep.flatten(1), encoder_attention_mask=prompt_mask,
                                video_coords=video_coords(b, latent_frames, height, width), return_dict=False)[0]
    velocity = pipe._unpack_latents(velocity, latent_frames, height, width, 1, 1)
    estimate = noisy - sigma * velocity
    estimate[:, :, 0] = x0[:, :, 0]
    latents = pipe._denormalize_latents(estimate, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
    video = vae.decode(latents, return_dict=False)[0]
    return ((video.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 4, 1).numpy()


def sampled_clips(backend: LTXConditionBackend, frames: np.ndarray, captions: list[str], aspect: AspectRatio,
                  seed: int, guidance: float | None) -> np.ndarray:
    grid = backend.native_grid()
    clips = []
    for index, (clip, text) in enumerate(zip(frames, captions, strict=True)):
        request = GenerationRequest(prompt=text, aspect_ratio=aspect, resolution="540p", keyframes=FIRST_FRAME)
        plan = plan_generation(request, grid, seed=seed * 100_000 + index, steps=backend.default_steps,
                               guidance_scale=backend.default_guidance if guidance is None else guidance)
        clips.append(backend.generate(plan, lambda *_: None, lambda: False, conditions=[clip[:1]]))
    return np.stack(clips)


def measure(model_dir: Path, *, clips: int, mode: str, sigma: float, seed: int, aspect: AspectRatio,
            guidance: float | None = None) -> dict:
    """Per pixel frame, the median over clips of ``travel``, ``off`` and ``area`` (see the module docstring)."""
    allowed = replace(world_for("static-camera", role="heldout"), object_counts=(1,), motions=STRAIGHT)
    batch = draw_batch(seed, 0, clips, allowed=allowed, aspect=aspect, with_masks=True)
    backend = load_backend(model_dir)
    if mode == "predict":
        generated = predicted_clips(backend, batch.frames, batch.captions, sigma, seed)
    else:
        generated = sampled_clips(backend, batch.frames, batch.captions, aspect, seed, guidance)
    travel, off, area = [], [], []
    for clip, made, mask in zip(batch.frames, generated, batch.masks, strict=True):
        colour = np.median(clip[0][mask[0]], axis=0)
        background = np.median(clip[0][~mask[0]], axis=0)
        true_centre, true_area = object_stats(clip, colour, background)
        made_centre, made_area = object_stats(made, colour, background)
        shift = true_centre - true_centre[0]
        length = np.linalg.norm(shift, axis=1)
        radius = np.sqrt(true_area[0] / np.pi)
        with np.errstate(invalid="ignore", divide="ignore"):
            travel.append(((made_centre - true_centre[0]) * shift).sum(axis=1) / length**2)
        off.append(np.linalg.norm(made_centre - true_centre, axis=1) / radius)
        area.append(made_area / true_area)
    return {name: np.nanmedian(np.stack(values), axis=0) for name, values in
            (("travel", travel), ("off", off), ("area", area))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, action="append", required=True)
    parser.add_argument("--mode", choices=["predict", "sample"], default="predict")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aspect", default="16:9")
    parser.add_argument("--guidance", type=float, default=None, help="sample mode: guidance scale (model default)")
    parser.add_argument("--every", type=int, default=4, help="report every N-th pixel frame (4: one per latent frame)")
    args = parser.parse_args()
    for model_dir in args.model_dir:
        stats = measure(model_dir, clips=args.clips, mode=args.mode, sigma=args.sigma, seed=args.seed,
                        aspect=AspectRatio(args.aspect), guidance=args.guidance)
        frames = range(args.every, len(stats["travel"]), args.every)
        setting = f"sigma {args.sigma}" if args.mode == "predict" else f"sampled, guidance {args.guidance or 'default'}"
        print(f"\n{model_dir} ({args.mode}, {setting}, {args.clips} clips, medians)\n")
        print("| frame | " + " | ".join(str(f) for f in frames) + " |")
        print("|---" * (len(frames) + 1) + "|")
        for name in ("travel", "off", "area"):
            print(f"| {name} | " + " | ".join(f"{stats[name][f]:.2f}" for f in frames) + " |")


if __name__ == "__main__":
    main()
