"""``ltx-condition`` with a latent upsampler: two stages (half size, latents upsampled 2x, a short refinement at the
full size) on the tiny model built from LTX-Video 0.9.7 distilled's real config, whose ``latent_upsampler/`` folder
keeps the real upsampler's channels and 2x spatial upsampling."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub.utils import filter_repo_objects
from tests.conftest import RecordingSink

from dreamreel.engine.backends.base import EditGuide, GenerationCancelled
from dreamreel.engine.backends.ltx import LTXConditionBackend, refine_schedule
from dreamreel.engine.checkpoint import IGNORE_PATTERNS, allow_patterns, check
from dreamreel.engine.model_dir import read_settings
from dreamreel.engine.plan import Condition, Plan
from dreamreel.engine.tiny_real import build_from_real_config

STEPS = 5
"""Stage 1 runs all five; stage 2 the last ``int(5 * 0.4) = 2`` of a five-step schedule: 7 in all."""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_from_real_config("ltx-video-0.9.7-13b-distilled", tmp_path_factory.mktemp("ltx097") / "m", seed=0)


@pytest.fixture(scope="module")
def two_stage(model_dir: Path) -> LTXConditionBackend:
    return LTXConditionBackend(model_dir)


@pytest.fixture(scope="module")
def one_stage(model_dir: Path) -> LTXConditionBackend:
    return LTXConditionBackend(model_dir, settings={**read_settings(model_dir), "latent_upsampler": False})


def plan_for(backend: LTXConditionBackend, width: int = 128, height: int = 64, steps: int = STEPS,
             conditions: tuple[Condition, ...] = ()) -> Plan:
    grid = backend.native_grid()
    frames = grid.frame_multiple + 1
    return Plan(prompt="a red ball rolls across a wooden table", seed=3, native_width=width, native_height=height,
                native_frames=frames, native_fps=grid.fps, output_width=width, output_height=height,
                output_frames=frames, output_fps=grid.fps, num_inference_steps=steps, guidance_scale=1.0,
                conditions=conditions)


def run(backend: LTXConditionBackend, plan: Plan, **kwargs: object) -> tuple[np.ndarray, list[tuple[int, int]]]:
    steps: list[tuple[int, int]] = []
    frames = backend.generate(plan, lambda done, total: steps.append((done, total)), lambda: False, **kwargs)
    return frames, steps


def test_the_refinement_runs_the_end_of_the_schedule_never_all_of_it() -> None:
    # (steps run, schedule length, denoise_strength asked): LTXConditionPipeline runs int(schedule * strength)
    assert refine_schedule(10, 0.4) == (4, 10, 0.45)  # diffusers' 0.9.7 example: 4 steps of 10
    assert refine_schedule(8, 0.4) == (3, 8, 0.4375)
    assert refine_schedule(2, 0.4) == (1, 2, 0.75)
    assert refine_schedule(1, 0.4) == (1, 2, 0.75)  # a one-step plan refines on the last step of two
    for steps in range(1, 12):
        runs, schedule, strength = refine_schedule(steps, 0.4)
        assert int(schedule * strength) == runs < schedule


def test_two_stages_count_as_one_progress_and_differ_from_one_stage(two_stage: LTXConditionBackend,
                                                                    one_stage: LTXConditionBackend) -> None:
    assert two_stage.upsample is not None and one_stage.upsample is None
    plan = plan_for(two_stage)
    assert (two_stage.first_stage_plan(plan).native_width, two_stage.first_stage_plan(plan).native_height) == (64, 32)
    frames, steps = run(two_stage, plan)
    assert frames.shape == (plan.native_frames, plan.native_height, plan.native_width, 3) and frames.dtype == np.uint8
    assert steps == [(step, STEPS + 2) for step in range(1, STEPS + 3)]
    assert np.array_equal(run(two_stage, plan)[0], frames)  # the seed decides both stages

    single, single_steps = run(one_stage, plan)
    assert single_steps == [(step, STEPS) for step in range(1, STEPS + 1)]
    assert single.shape == frames.shape and not np.array_equal(single, frames)


def test_a_size_whose_half_is_rounded_up_still_refines_at_the_native_size(two_stage: LTXConditionBackend) -> None:
    """96 px is three latent cells: the first stage makes two (64 px), upsampled to four and resized to three."""
    plan = plan_for(two_stage, width=96, steps=1)
    assert two_stage.first_stage_plan(plan).native_width == 64
    frames, steps = run(two_stage, plan)
    assert frames.shape == (plan.native_frames, 64, 96, 3)
    assert steps == [(1, 2), (2, 2)]


def test_previews_come_from_both_stages_at_the_native_size(two_stage: LTXConditionBackend) -> None:
    plan, sink = plan_for(two_stage), RecordingSink()
    run(two_stage, plan, preview=sink)
    # Every step but each stage's last asks (the first stage's last step hands its latents on undecoded).
    assert sink.asked == [(1, 7), (2, 7), (3, 7), (4, 7), (6, 7)]
    assert [frames.shape for frames in sink.frames] == [(plan.native_frames, 64, 128, 3)] * 5


def test_cancel_in_the_second_stage_stops_it(two_stage: LTXConditionBackend) -> None:
    steps: list[tuple[int, int]] = []
    with pytest.raises(GenerationCancelled):
        two_stage.generate(plan_for(two_stage), lambda done, total: steps.append((done, total)),
                           lambda: len(steps) >= STEPS + 1)
    assert steps == [(step, STEPS + 2) for step in range(1, STEPS + 2)]  # stopped after stage 2's first step


def test_keyframes_condition_both_stages_and_an_edit_runs_one(two_stage: LTXConditionBackend,
                                                               one_stage: LTXConditionBackend) -> None:
    plan = plan_for(two_stage, conditions=(Condition(slot="frame0", kind="image", frame_index=0),))
    image = np.zeros((1, plan.native_height, plan.native_width, 3), np.uint8)
    image[..., 0] = 220
    keyed, steps = run(two_stage, plan, conditions=[image])
    assert len(steps) == STEPS + 2 and keyed.shape == (plan.native_frames, 64, 128, 3)
    assert not np.array_equal(keyed, run(two_stage, plan_for(two_stage))[0])

    # A modify holds the full-size source: the one stage, as without an upsampler, and the same clip.
    source = np.full((plan.native_frames, plan.native_height, plan.native_width, 3), 128, np.uint8)
    guide = EditGuide(frames=source, strength=0.6)
    edited, steps = run(two_stage, plan_for(two_stage), guide=guide)
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert np.array_equal(edited, run(one_stage, plan_for(one_stage), guide=guide)[0])


def test_settings_turn_the_stage_off_and_are_checked(model_dir: Path) -> None:
    settings = read_settings(model_dir)
    tuned = LTXConditionBackend(model_dir, settings={**settings, "upsample_denoise_strength": 0.7,
                                                     "upsample_adain_factor": 1.0})
    assert (tuned.two_stage.denoise_strength, tuned.two_stage.adain_factor) == (0.7, 1.0)
    assert run(tuned, plan_for(tuned))[1][-1] == (STEPS + 3, STEPS + 3)  # int(5 * 0.7) = 3 refinement steps
    for bad in ({"upsample_denoise_strength": 1.0}, {"upsample_tone_map_compression_ratio": 2},
                {"latent_upsampler": "no"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            LTXConditionBackend(model_dir, settings={**settings, **bad})


def test_models_check_and_pull_take_the_upsampler_folder(model_dir: Path, tmp_path: Path) -> None:
    report = check(model_dir, dtype="float32")
    assert report.ok, report.problems
    upsampler = {c.name: c for c in report.components}["latent_upsampler"]
    assert upsampler.class_name == "LTXLatentUpsamplerModel" and upsampler.params > 0
    assert any("two stages" in note for note in report.notes)

    wrong = shutil.copytree(model_dir, tmp_path / "wrong")
    config = wrong / "latent_upsampler" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "_class_name": "AutoencoderKLLTXVideo"}))
    (wrong / "latent_upsampler" / "diffusion_pytorch_model.safetensors").unlink()
    problems = check(wrong, dtype="float32").problems
    assert any("latent_upsampler: wrong class AutoencoderKLLTXVideo" in p for p in problems), problems
    assert any("latent_upsampler: no weights" in p for p in problems), problems

    listing = ["model_index.json", "latent_upsampler/config.json",
               "latent_upsampler/diffusion_pytorch_model.safetensors", "latent_upsampler/model.bin", "vae/x.gguf"]
    pulled = set(filter_repo_objects(listing, allow_patterns=allow_patterns("ltx-condition"),
                                     ignore_patterns=list(IGNORE_PATTERNS)))
    assert pulled == set(listing[:3])


def test_without_the_folder_one_stage(two_stage: LTXConditionBackend, model_dir: Path, tmp_path: Path) -> None:
    bare = shutil.copytree(model_dir, tmp_path / "bare", ignore=shutil.ignore_patterns("latent_upsampler"))
    backend = LTXConditionBackend(bare)
    assert backend.upsample is None
    assert run(backend, replace(plan_for(backend), num_inference_steps=1))[1] == [(1, 1)]
