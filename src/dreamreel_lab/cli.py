"""``dreamreel-lab`` command line: train and eval the embedded model on the procedural world.

Heavy imports (torch, diffusers) happen inside the command that needs them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dreamreel.cli import run_command
from dreamreel.config import Settings


def _conditioning(text: str) -> tuple[tuple[str, float], ...]:
    """argparse type for ``--conditioning``: a bad mode or weight is a usage error, not a traceback."""
    from dreamreel_lab.training.flow_stage import parse_conditioning

    try:
        return parse_conditioning(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def cmd_train(args: argparse.Namespace) -> int:
    from dreamreel_lab.training.run import run_stage

    return run_stage(args.stage, args.work_dir, max_hours=args.max_hours, world=args.world, threads=args.threads,
                     from_model=args.from_model, steps=args.steps, layers=args.layers, rope=args.rope,
                     conditioning=args.conditioning)


def cmd_eval(args: argparse.Namespace) -> int:
    from dreamreel_lab.training.evaluate import main_eval

    return main_eval(args.model_dir, args.prompts, args.aspects, args.out, args.steps, args.world, args.guidance,
                     args.first_frame, args.seed, args.guidance_min_sigma)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dreamreel-lab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train the embedded model on the procedural world (resumable)")
    train.add_argument("--stage", choices=["vae", "decoder", "latents", "flow", "export", "all"], default="all")
    train.add_argument("--work-dir", type=Path, default=Path("checkpoints/embedded"))
    train.add_argument("--max-hours", type=float, default=None, help="stop this call after this long")
    train.add_argument("--world", choices=["full", "reduced", "static-camera"], default="full")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    train.add_argument("--from-model", type=Path, default=None,
                       help="seed missing checkpoints from a shipped model (e.g. models/embedded) and continue")
    train.add_argument("--steps", type=int, default=None,
                       help="override the vae/decoder/flow stage's step count (and its learning-rate schedule)")
    train.add_argument("--layers", type=int, default=None,
                       help="flow stage: transformer blocks; more than the checkpoint holds deepens it, new blocks "
                            "starting as identities")
    train.add_argument("--rope", choices=["stock", "grid"], default=None,
                       help="flow stage: the transformer's rotary position embedding (default: what the work dir "
                            "trained with, stock for a fresh run); see training/architecture.py ROPES")
    train.add_argument("--conditioning", type=_conditioning, default=(),
                       help="flow stage: override conditioning-mode weights, e.g. first=0.3,none=0.25 (modes: "
                            "none, first, last, first_last, leading, trailing; see training/flow_stage.py)")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("eval", help="prompt adherence of a model, measured by the world analyzer")
    evaluate.add_argument("--model-dir", type=Path, default=Settings().model_dir)
    evaluate.add_argument("--prompts", type=int, default=200)
    evaluate.add_argument("--aspects", default="16:9,9:16")
    evaluate.add_argument("--steps", type=int, default=None, help="denoising steps (model default)")
    evaluate.add_argument("--guidance", type=float, default=None, help="guidance scale (model default)")
    evaluate.add_argument("--guidance-min-sigma", type=float, default=None,
                          help="guidance only on steps at or above this noise level (default 0: every step; "
                               "see training/sampler.py)")
    evaluate.add_argument("--world", choices=["full", "reduced", "static-camera"], default="full")
    evaluate.add_argument("--seed", type=int, default=0, help="which held-out prompts (another seed, another set)")
    evaluate.add_argument("--first-frame", action="store_true",
                          help="start every clip from the scene's rendered first frame (motion given the layout)")
    evaluate.add_argument("--out", type=Path, default=None, help="also write the JSON result here")
    evaluate.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
