"""``dreamreel train``: run one stage (or all, in order), resuming from the work directory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dreamreel.world.spec import REDUCED_WORLD, Allowed
from dreamreel.world.split import Split
from dreamreel.world.vocab import Camera

TRAINING_SPLIT = Split(axes=("colour", "shape", "motion"))
"""Colour x shape x motion combinations held out of training (every single word is still seen):
evaluation prompts use only held-out combinations, so they test composition, not recall."""


WORLDS: dict[str, Allowed] = {
    "full": Allowed(),
    "reduced": REDUCED_WORLD,
    "static-camera": Allowed(cameras=(Camera.STATIC,)),
}
"""Worlds a training stage (or the eval) can draw from. ``static-camera`` is the full world with the
camera held still: the shipped VAE cannot show a camera move (its reconstructions of panning,
tilting and zooming clips come back with the scenery standing still, session 7), so in its latent
space a camera move only bends the objects' on-screen paths, which teaches the flow model motions
the analyzer (and a viewer) then reads as wrong."""


def world_for(name: str, role: str = "train") -> Allowed:
    return replace(WORLDS[name], split=TRAINING_SPLIT, role=role)


def run_stage(stage: str, work_dir: Path, *, max_hours: float | None, world: str, threads: int | None = None,
              from_model: Path | None = None, steps: int | None = None, layers: int | None = None,
              rope: str | None = None, conditioning: tuple[tuple[str, float], ...] = ()) -> int:
    """Run ``stage`` (or all). ``steps`` overrides the vae/decoder/flow stage's step count, and with it the end of
    its cosine schedule, for a run that must fit a shorter session than the full recipe; ``layers`` sets the flow
    transformer's depth (deepening a trained one, ``training/grow.py``); ``rope`` its position embedding
    (a key of ``architecture.ROPES``); ``conditioning`` overrides some of the flow's conditioning-mode weights."""
    import torch

    if threads:
        # On a shared 2-core machine, two torch threads fighting a second busy process run ~5x slower.
        torch.set_num_threads(threads)
    allowed = world_for(world)
    if from_model is not None:
        from dreamreel.training.seed import seed_from_model

        print(f"seeded from {from_model}: {', '.join(seed_from_model(from_model, work_dir)) or 'nothing missing'}")
    if stage in ("vae", "all"):
        from dreamreel.training.vae_stage import VAEConfig, train_vae

        train_vae(work_dir, _with_steps(VAEConfig(), steps), allowed=allowed, max_hours=max_hours)
    if stage == "decoder":  # optional, not in "all": measured no help to the shipped model (model card, session 7)
        from dreamreel.training.decoder_stage import DecoderConfig, train_decoder

        train_decoder(work_dir, _with_steps(DecoderConfig(), steps), allowed=allowed, max_hours=max_hours)
    if stage in ("latents", "all"):
        from dreamreel.training.latents_stage import LatentsConfig, build_latent_cache

        build_latent_cache(work_dir, LatentsConfig(), allowed=allowed, max_hours=max_hours)
    if stage in ("flow", "all"):
        from dreamreel.training.flow_stage import FlowConfig, train_flow

        config = FlowConfig(layers=layers, rope=rope, conditioning=conditioning)
        train_flow(work_dir, _with_steps(config, steps), max_hours=max_hours,
                   on_checkpoint=lambda step: probe_eval(work_dir, step, world))
    if stage in ("export", "all"):
        from dreamreel.training.export import export_pipeline

        print(f"exported to {export_pipeline(work_dir, work_dir / 'export')}")
    return 0


def _with_steps(config, steps: int | None):
    return config if steps is None else replace(config, steps=steps)


PROBE_EVERY = 1000
"""Flow steps between quick adherence probes (24 held-out prompts, 16:9, 12 sampling steps)."""


def probe_eval(work_dir: Path, step: int, world: str) -> None:
    """Measure adherence while training runs, so a failing recipe is caught in the first hour."""
    if step % PROBE_EVERY:
        return
    from dreamreel.training.checkpoint import StageLog
    from dreamreel.training.evaluate import evaluate
    from dreamreel.training.export import export_pipeline

    snapshot = export_pipeline(work_dir, work_dir / "snapshot")
    result = evaluate(snapshot, prompts=24, aspects=("16:9",), steps=12, world=world)
    StageLog(work_dir, "probe").write(step=step, **result["model"],
                                      adjacent=result["adjacent_frame_difference"])
