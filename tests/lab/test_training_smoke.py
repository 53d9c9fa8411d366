"""Every training stage runs end to end on a toy budget and exports a pipeline the server (or, for a non-stock
position embedding, the lab's sampler) can load."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLLTXVideo

from dreamreel.core.request import GenerationRequest
from dreamreel.engine.backends.ltx import LTXConditionBackend
from dreamreel.engine.plan import plan_generation
from dreamreel_lab.training.architecture import ROPES
from dreamreel_lab.training.evaluate import ATTRIBUTES, evaluate
from dreamreel_lab.training.export import build_pipeline, export_pipeline
from dreamreel_lab.training.flow_stage import (
    CONDITIONING_MODES,
    FlowConfig,
    LatentCache,
    flow_loss,
    parse_conditioning,
    train_flow,
    trained_rope,
)
from dreamreel_lab.training.latents_stage import LatentsConfig, build_latent_cache
from dreamreel_lab.training.sampler import load_backend
from dreamreel_lab.training.vae_stage import VAEConfig, train_vae
from dreamreel_lab.training.worlds import world_for


def test_stages_resume_and_export_a_loadable_model(tmp_path) -> None:
    work = tmp_path / "work"
    allowed = world_for("reduced")
    train_vae(work, VAEConfig(steps=1, batch_size=1, frames=9, checkpoint_every=1, eval_clips=1), allowed=allowed)
    train_vae(work, VAEConfig(steps=2, batch_size=1, frames=9, checkpoint_every=1, eval_clips=1),
              allowed=allowed)  # resumes
    vae_log = (work / "vae.jsonl").read_text()
    assert '"event": "resume", "step": 1' in vae_log
    assert '"vae_psnr"' in vae_log and '"passes": false' in vae_log  # the pass mark is checked; 2 steps fail it

    build_latent_cache(work, LatentsConfig(shards=1, clips_per_shard=2, encode_batch=2, stats_clips=2),
                       allowed=allowed)
    shard = torch.load(work / "latents" / "shard-00000.pt", weights_only=False)
    assert shard["objects"].shape == shard["latents"][:, 0].shape and shard["objects"].any()
    train_flow(work, FlowConfig(steps=2, batch_size=2, checkpoint_every=1))
    out = export_pipeline(work, tmp_path / "model")
    settings = json.loads((out / "dreamreel.json").read_text())
    assert settings["trained_steps"] == 2 and settings["max_frames"] == 41 and settings["loop_on_image"] == "fade"
    exported_vae = AutoencoderKLLTXVideo.from_pretrained(out / "vae")
    posterior = exported_vae.encode(torch.rand(1, 3, 1, 96, 160) * 2 - 1).latent_dist
    assert posterior.std.max() < 1e-5  # keyframes, which the pipeline encodes with .sample(), come in clean

    # a deeper transformer grows out of the trained one (new blocks start as identities) and ships
    train_flow(work, FlowConfig(steps=3, batch_size=2, checkpoint_every=1, layers=6))
    assert '"event": "deepened", "step": 2, "layers_from": 4, "layers_to": 6' in (work / "flow.jsonl").read_text()
    deeper = export_pipeline(work, tmp_path / "deeper")
    assert json.loads((deeper / "transformer" / "config.json").read_text())["num_layers"] == 6
    assert LTXConditionBackend(deeper).native_grid().max_frames == 41  # loads like any checkpoint

    # a position embedding for this grid: recorded in the work dir, shipped in dreamreel.json, set up by the lab
    assert "rope" not in settings
    train_flow(work, FlowConfig(steps=4, batch_size=2, checkpoint_every=1, rope="grid"))
    assert '"event": "rope", "rope": "grid"' in (work / "flow.jsonl").read_text()
    tuned = export_pipeline(work, tmp_path / "tuned")
    assert json.loads((tuned / "dreamreel.json").read_text())["rope"] == ROPES["grid"]
    with pytest.raises(ValueError, match="rope"):
        LTXConditionBackend(tuned)  # a lab experiment: the service refuses it
    assert load_backend(tuned).pipe.transformer.rope.theta == ROPES["grid"]["theta"]  # the lab sets it up
    assert load_backend(deeper).pipe.transformer.rope.theta == 10000.0  # stock elsewhere

    # every conditioning mode trains on what the cache holds (the reverse-extend tail included)
    assert shard["tail"].shape[2] == 2 and shard["last"].shape[2] == 1
    pipe = build_pipeline(work)
    cache = LatentCache(work / "latents")
    assert cache.modes()[0] == CONDITIONING_MODES
    # --conditioning overrides some weights; a zero drops the mode
    modes, weights = cache.modes(parse_conditioning("none=0,first=0.5"))
    assert "none" not in modes and dict(zip(modes, weights, strict=True))["first"] == 0.5
    data = cache.batch(np.random.default_rng(0), 2)
    for mode in CONDITIONING_MODES:
        loss = flow_loss(pipe.transformer, pipe.text_encoder, pipe.tokenizer, data, mode,
                         torch.Generator().manual_seed(0), FlowConfig())
        assert torch.isfinite(loss) and loss > 0, mode

    backend = LTXConditionBackend(out)
    grid = backend.native_grid()
    assert (grid.short_side, grid.frame_multiple, grid.fps, grid.max_frames) == (96, 4, 8, 41)
    plan = plan_generation(GenerationRequest(prompt="a red ball moves left", duration_s=9), grid, seed=0,
                           steps=2, guidance_scale=backend.default_guidance)
    frames = backend.generate(plan, lambda *_: None, lambda: False)
    assert frames.shape == (41, 96, 160, 3) and frames.dtype == np.uint8
    size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    assert size_mb < 40, f"exported model is {size_mb:.1f} MB"

    result = evaluate(out, prompts=1, aspects=("9:16",), steps=2, guidance=1.0, world="reduced")
    assert result["sampler"] == {"steps": 2, "guidance_scale": 1.0, "guidance_min_sigma": 0.0}  # overrides reached it
    assert set(result["model"]) == set(ATTRIBUTES) and result["analyzer_on_ground_truth"]["background"] == 1.0
    assert "first_frame_psnr" not in result
    # one clip: its asked-for motion and camera were each read back as exactly one word
    assert sum(sum(row.values()) for row in result["motion_read_as"].values()) == 1
    assert sum(sum(row.values()) for row in result["camera_read_as"].values()) == 1
    image_to_video = evaluate(out, prompts=1, aspects=("16:9",), steps=2, world="reduced", first_frame=True)
    assert image_to_video["first_frame"] is True and 0 < image_to_video["first_frame_psnr"] < 100


def test_a_shipped_model_seeds_a_lost_work_directory(tmp_path) -> None:
    """The checkpoints folder is not durable; the shipped model is. Training must continue from it."""
    from dreamreel_lab.training.autoencoder import load_trained_vae, pin_posterior_variance
    from dreamreel_lab.training.seed import seed_from_model

    work = tmp_path / "work"
    allowed = world_for("reduced")
    train_vae(work, VAEConfig(steps=1, batch_size=1, frames=9, checkpoint_every=1, eval_clips=1), allowed=allowed)
    build_latent_cache(work, LatentsConfig(shards=1, clips_per_shard=2, encode_batch=2, stats_clips=2),
                       allowed=allowed)
    train_flow(work, FlowConfig(steps=3, batch_size=2, checkpoint_every=1))
    shipped = export_pipeline(work, tmp_path / "model")

    fresh = tmp_path / "fresh"
    written = seed_from_model(shipped, fresh)
    assert set(written) == {"spiece.model", "vae.pt", "latents/stats.pt", "flow.pt"}
    assert seed_from_model(shipped, fresh) == []  # never overwrites

    original = pin_posterior_variance(load_trained_vae(work)).state_dict()  # as export ships it
    seeded = load_trained_vae(fresh).state_dict()
    assert all(torch.equal(original[k], seeded[k]) for k in original if "latents_" not in k)
    assert torch.load(fresh / "vae.pt", weights_only=False)["step"] == 1  # a later session can train it on
    flow = torch.load(fresh / "flow.pt", weights_only=False)
    assert flow["step"] == 3
    shipped_ema = torch.load(work / "flow.pt", weights_only=False)["ema"]
    assert all(torch.allclose(shipped_ema[k], flow["model"][k]) for k in shipped_ema)

    build_latent_cache(fresh, LatentsConfig(shards=1, clips_per_shard=2, encode_batch=2, stats_clips=2),
                       allowed=allowed)
    train_flow(fresh, FlowConfig(steps=4, batch_size=2, checkpoint_every=1))  # resumes at step 3
    assert '"event": "resume", "step": 3' in (fresh / "flow.jsonl").read_text()
    assert torch.load(fresh / "flow.pt", weights_only=False)["step"] == 4
    # the seeded VAE trains on too (its checkpoint carries no optimizer state: Adam starts afresh)
    train_vae(fresh, VAEConfig(steps=2, batch_size=1, frames=9, checkpoint_every=1, eval_clips=1), allowed=allowed)
    assert torch.load(fresh / "vae.pt", weights_only=False)["step"] == 2  # with a fresh optimizer

    # a model shipped with its own position embedding hands it on to the work dir seeded from it
    settings = json.loads((shipped / "dreamreel.json").read_text())
    (shipped / "dreamreel.json").write_text(json.dumps({**settings, "rope": ROPES["grid"]}))
    assert "rope.json" in seed_from_model(shipped, tmp_path / "again")
    assert trained_rope(tmp_path / "again") == ROPES["grid"] and trained_rope(fresh) is None


def test_decoder_stage_trains_the_decoder_only_and_ships_with_the_model(tmp_path) -> None:
    """The decoder stage must leave the encoder (so every cached latent) exactly as stage 1 left it."""
    from dreamreel_lab.training.autoencoder import load_stage1_vae, load_trained_vae, pin_posterior_variance
    from dreamreel_lab.training.decoder_stage import DecoderConfig, train_decoder
    from dreamreel_lab.training.seed import seed_from_model

    work = tmp_path / "work"
    allowed = world_for("reduced")
    train_vae(work, VAEConfig(steps=1, batch_size=1, frames=9, checkpoint_every=1, eval_clips=1), allowed=allowed)
    config = DecoderConfig(steps=1, batch_size=1, checkpoint_every=1, eval_clips=1, ema_decay=0.0)
    train_decoder(work, config, allowed=allowed)
    train_decoder(work, replace(config, steps=2), allowed=allowed)  # resumes
    assert '"event": "resume", "step": 1' in (work / "decoder.jsonl").read_text()

    stage1, trained = load_stage1_vae(work).state_dict(), load_trained_vae(work).state_dict()
    assert all(torch.equal(stage1[k], trained[k]) for k in stage1 if not k.startswith("decoder."))
    assert any(not torch.equal(stage1[k], trained[k]) for k in stage1 if k.startswith("decoder."))

    build_latent_cache(work, LatentsConfig(shards=1, clips_per_shard=2, encode_batch=2, stats_clips=2),
                       allowed=allowed)
    train_flow(work, FlowConfig(steps=1, batch_size=2, checkpoint_every=1))
    shipped = export_pipeline(work, tmp_path / "model")
    assert json.loads((shipped / "dreamreel.json").read_text())["decoder_steps"] == 2
    fresh = tmp_path / "fresh"
    assert "decoder.pt" in seed_from_model(shipped, fresh)
    assert torch.load(fresh / "decoder.pt", weights_only=False)["step"] == 2
    seeded = load_trained_vae(fresh).state_dict()
    trained = pin_posterior_variance(load_trained_vae(work)).state_dict()  # as export ships it
    assert all(torch.equal(trained[k], seeded[k]) for k in trained if "latents_" not in k)


def test_conditioning_overrides_are_checked() -> None:
    assert parse_conditioning(" first=0.3, leading=0.2 ") == (("first", 0.3), ("leading", 0.2))
    for bad in ("sideways=0.1", "first=-1", "first"):
        try:
            parse_conditioning(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
