"""The shipped embedded model: small enough for the repo, loads offline, and is the default that
``dreamreel generate`` (what ``make run`` calls) uses to draw a smooth, non-flat clip."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import torch
from tests.conftest import DREAMREEL

from dreamreel.config import DEFAULT_MODEL_DIR, REPO_ROOT
from dreamreel.media.probe import read_frames

SHIPPED = REPO_ROOT / "models" / "embedded"


def test_the_shipped_model_is_the_default_fits_the_repo_and_loads_offline() -> None:
    from diffusers import LTXConditionPipeline

    assert DEFAULT_MODEL_DIR == SHIPPED
    size_mb = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file()) / 2**20
    assert size_mb <= 40, f"shipped model is {size_mb:.1f} MB"
    settings = json.loads((SHIPPED / "dreamreel.json").read_text())
    assert settings["trained_steps"] > 0 and settings["vae_steps"] > 0
    pipe = LTXConditionPipeline.from_pretrained(SHIPPED, local_files_only=True)
    assert pipe.vae.config.latent_channels == pipe.transformer.config.in_channels == 32
    # the pipeline encodes keyframes with latent_dist.sample(): the posterior must be its mean
    posterior = pipe.vae.encode(torch.rand(1, 3, 1, 96, 160) * 2 - 1).latent_dist
    assert posterior.std.max() < 1e-5


def test_default_generate_draws_a_smooth_clip_that_is_not_flat(tmp_path) -> None:
    out = tmp_path / "clip.mp4"
    result = subprocess.run([DREAMREEL, "generate", "a red ball moves to the left over the sand", "-o", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    frames = read_frames(out).astype(np.float32)
    assert frames.shape == (120, 540, 960, 3)
    # The tiny random model's native frames differ by ~45 grey levels from one to the next; the
    # trained model's, like rendered world clips, by a few.
    adjacent = np.abs(np.diff(frames[::3], axis=0)).mean()
    assert adjacent < 15, f"mean adjacent-frame difference {adjacent:.1f}"
    assert frames.std() > 10, "the clip is one flat colour"


def test_a_camera_concept_moves_the_delivered_camera(tmp_path) -> None:
    """``--concept zoom_in`` (the API's ``concepts``): the world analyzer measures a zoom-in on the delivered
    MP4, shrunk back to the model's native size and frame rate. The embedded model moves its camera by a
    virtual camera (``media/camera.py``); on its own frames the analyzer reads the move about one time in ten.

    The measured totals are asserted, not the named move: generation is not bit-reproducible across runs
    (thread scheduling), and the naming rule also asks 90 % of frame pairs to agree, which the model's
    boiling scenery breaks now and then (one CI run of this clip read "static"). Six runs measured the zoom
    at 0.63-0.72 of the world's nominal zoom and every other move at most 0.46; without the virtual camera
    (``camera_moves: prompt``) the same prompt measured a zoom of 0.16."""
    from PIL import Image

    from dreamreel_lab.world.analyze import analyze_clip

    out = tmp_path / "zoom.mp4"
    result = subprocess.run([DREAMREEL, "generate", "a blue square on green grass", "--concept", "zoom_in",
                             "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    native = np.stack([np.asarray(Image.fromarray(frame).resize((160, 90), Image.Resampling.BILINEAR))
                       for frame in read_frames(out)[::3]])
    motion = analyze_clip(native).camera_motion
    assert motion is not None
    assert motion.zoom > 0.5, motion
    assert motion.zoom > max(abs(motion.pan), abs(motion.tilt), abs(motion.orbit)), motion
