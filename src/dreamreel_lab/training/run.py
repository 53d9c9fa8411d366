"""``dreamreel-lab train``: run one stage (or all, in order), resuming from the work directory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dreamreel_lab.training.worlds import world_for


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
        from dreamreel_lab.training.seed import seed_from_model

        print(f"seeded from {from_model}: {', '.join(seed_from_model(from_model, work_dir)) or 'nothing missing'}")
    if stage in ("vae", "all"):
        from dreamreel_lab.training.vae_stage import VAEConfig, train_vae

        train_vae(work_dir, _with_steps(VAEConfig(), steps), allowed=allowed, max_hours=max_hours)
    if stage == "decoder":  # optional, not in "all": measured no help to the shipped model (model card)
        from dreamreel_lab.training.decoder_stage import DecoderConfig, train_decoder

        train_decoder(work_dir, _with_steps(DecoderConfig(), steps), allowed=allowed, max_hours=max_hours)
    if stage in ("latents", "all"):
        from dreamreel_lab.training.latents_stage import LatentsConfig, build_latent_cache

        build_latent_cache(work_dir, LatentsConfig(), allowed=allowed, max_hours=max_hours)
    if stage in ("flow", "all"):
        from dreamreel_lab.training.flow_stage import FlowConfig, train_flow

        config = FlowConfig(layers=layers, rope=rope, conditioning=conditioning)
        train_flow(work_dir, _with_steps(config, steps), max_hours=max_hours,
                   on_checkpoint=lambda step: probe_eval(work_dir, step, world))
    if stage in ("export", "all"):
        from dreamreel_lab.training.export import export_pipeline

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
    from dreamreel_lab.training.checkpoint import StageLog
    from dreamreel_lab.training.evaluate import evaluate
    from dreamreel_lab.training.export import export_pipeline

    snapshot = export_pipeline(work_dir, work_dir / "snapshot")
    result = evaluate(snapshot, prompts=24, aspects=("16:9",), steps=12, world=world)
    StageLog(work_dir, "probe").write(step=step, **result["model"],
                                      adjacent=result["adjacent_frame_difference"])
