"""``dreamreel models pull|check|list|calibrate``: the models config's checkpoints fetched, validated, listed and
calibrated for MagCache.

Names resolve through the models config (``--models-config`` / ``DREAMREEL_MODELS_CONFIG``); without one the
built-in names mean the embedded checkpoint, which has nothing to pull. ``check`` is what to run before a
worker starts: it exits 1 listing every problem it finds, 0 with the report (files, classes, dtype,
parameters, peak GPU memory per size and duration).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dreamreel.config import Settings
from dreamreel.engine.catalog import Catalog, CatalogError, ModelEntry

if TYPE_CHECKING:
    from rich.console import Console

    from dreamreel.engine.checkpoint import CheckReport

SettingsFrom = Callable[[argparse.Namespace], Settings]


def add_parsers(sub: argparse._SubParsersAction, add_common: Callable[[argparse.ArgumentParser], None],
                settings_from: SettingsFrom) -> None:
    models = sub.add_parser("models", help="the models config's checkpoints: pull, check, list")
    models_sub = models.add_subparsers(dest="models_command", required=True)

    pull = models_sub.add_parser("pull", help="download a configured hub checkpoint at its pinned revision")
    add_common(pull)
    pull.add_argument("name", help="a public model name from the models config")
    pull.add_argument("--no-progress", action="store_true", help="no progress bars (logs, CI)")
    pull.set_defaults(func=lambda args: cmd_pull(args, settings_from(args)))

    check = models_sub.add_parser("check", help="validate checkpoints before a worker loads them")
    add_common(check)
    check.add_argument("targets", nargs="+", metavar="NAME|DIR",
                       help="configured model names or checkpoint directories (several: each is checked)")
    check.add_argument("--memory-budget-gb", type=float, metavar="GIB",
                       help="GPU memory budget to check against (default: the config's memory_budget_gb)")
    check.add_argument("--family", help="family of a checkpoint directory (default: its dreamreel.json's)")
    check.set_defaults(func=lambda args: cmd_check(args, settings_from(args)))

    listing = models_sub.add_parser("list", help="the configured names, their checkpoints and whether pulled")
    add_common(listing)
    listing.set_defaults(func=lambda args: cmd_list(args, settings_from(args)))

    calibrate = models_sub.add_parser("calibrate", help="measure a model's MagCache ratios and print the cache "
                                                        "table to put in a speed preset")
    add_common(calibrate)
    calibrate.add_argument("name", help="a public model name")
    calibrate.add_argument("--steps", type=int, help="steps of the calibration run (default: the model's)")
    calibrate.add_argument("--prompt", default="a red ball bouncing on green grass, the camera pans slowly")
    calibrate.add_argument("--seed", type=int, default=0)
    calibrate.set_defaults(func=lambda args: cmd_calibrate(args, settings_from(args)))


def _catalog(settings: Settings) -> Catalog | None:
    try:
        return settings.catalog()
    except (CatalogError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _entry(catalog: Catalog, name: str) -> ModelEntry | None:
    try:
        return catalog.entry(name)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return None


def _console() -> Console:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console.width = 1000  # piped: one line per row, nothing wrapped
    return console


def cmd_pull(args: argparse.Namespace, settings: Settings) -> int:
    from dreamreel.engine.hub import NothingToPull, PullError, checkpoint_files, pull

    for name in ("httpx", "httpx2"):  # a line per request at INFO: the progress bars say it better
        logging.getLogger(name).setLevel(logging.WARNING)
    catalog = _catalog(settings)
    entry = catalog and _entry(catalog, args.name)
    if entry is None:
        return 2
    try:
        path = pull(entry, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: `dreamreel models pull {entry.name}` again finishes it (complete files are kept)",
              file=sys.stderr)
        return 130
    except NothingToPull as exc:
        print(exc)
        return 0
    except PullError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    files = checkpoint_files(path)
    size = sum(file.stat().st_size for file in files)
    print(f"pulled {entry.name}: {entry.repo}@{entry.revision} into {path} ({len(files)} files, {size / 1e6:.1f} MB); "
          f"next: dreamreel models check {entry.name}")
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from dreamreel.engine.checkpoint import check

    catalog = _catalog(settings)
    if catalog is None:
        return 2
    targets: list[ModelEntry | Path] = []
    for target in args.targets:
        if target in catalog.models:
            targets.append(catalog.models[target])
        elif Path(target).is_dir():
            targets.append(Path(target))
        else:
            print(f"error: {target!r} is neither a configured model ({', '.join(catalog.names)}) nor a directory",
                  file=sys.stderr)
            return 2
    console = _console()
    failed = 0
    for target in targets:
        report = check(target, dtype=None if isinstance(target, ModelEntry) else settings.dtype,
                       memory_budget_gb=args.memory_budget_gb,
                       family=None if isinstance(target, ModelEntry) else args.family)
        _print_report(console, report)
        failed += not report.ok
    return 1 if failed else 0


def _count(params: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if params >= scale:
            return f"{params / scale:.2f} {unit}"
    return str(params)


def _print_report(console: Console, report: CheckReport) -> None:
    from rich.table import Table

    from dreamreel.engine.checkpoint import human_bytes

    title = f"{report.name} ({report.path})" if report.name else str(report.path)
    console.print(f"[bold]{title}[/bold]: family {report.family}" +
                  (f", pipeline {report.pipeline}" if report.pipeline else ""))
    if report.components:
        table = Table("component", "class", "dtype", "params", "weights", "files")
        for c in report.components:
            table.add_row(c.name, f"{c.library}.{c.class_name}", c.dtype or "-",
                          _count(c.params) if c.kind == "model" else "-",
                          human_bytes(c.weight_bytes) if c.kind == "model" else "-", ", ".join(c.files) or "-")
        console.print(table)
        console.print(f"parameters: {_count(report.params)} ({report.params})")
    if report.memory:
        budget = f" within a budget of {human_bytes(report.budget_bytes)}" if report.budget_bytes is not None else ""
        table = Table("resolution", "duration", "delivered", "native", "frames", "weights", "activations", "peak",
                      "plan", "fits", title=f"estimated peak GPU memory (16:9){budget}")
        for row in report.memory:
            e = row.estimate
            table.add_row(row.resolution, f"{row.seconds} s", "x".join(map(str, row.delivered)),
                          f"{row.width}x{row.height}", str(row.frames), human_bytes(e.weights_bytes),
                          human_bytes(e.activations_bytes), human_bytes(e.peak_bytes), e.plan,
                          "yes" if e.fits else "no")
        console.print(table)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    sys.stdout.flush()
    for problem in report.problems:
        print(f"error: {report.name or report.path}: {problem}", file=sys.stderr, flush=True)
    verdict = "ok" if report.ok else f"{len(report.problems)} problem(s)"
    console.print(f"{report.name or report.path}: {verdict}", highlight=False)


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import replace

    from rich.table import Table

    catalog = _catalog(settings)
    if catalog is None:
        return 2
    default = catalog.models[catalog.default]
    table = Table("name", "family", "checkpoint", "revision", "device", "dtype", "pulled", "speed", "default")
    for name, entry in catalog.models.items():
        if name == catalog.default:
            marker = "*"
        elif replace(entry, name=catalog.default, speed=default.speed) == default:
            marker = f"= {catalog.default}"  # a built-in name the config leaves to its default (at its own speed)
        else:
            marker = ""
        table.add_row(name, entry.family, entry.repo or str(entry.path), (entry.revision or "-")[:12], entry.device,
                      entry.dtype, "yes" if (entry.path / "model_index.json").is_file() else "no", entry.speed,
                      marker)
    console = _console()
    console.print(table)
    source = catalog.source or "no models config: the built-in names serve the --model-dir checkpoint"
    console.print(f"config: {source}", highlight=False)
    return 0


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    """One generation at the model's native size with diffusers' MagCache calibration hooks on; prints the
    TOML cache table (the ratios belong to this checkpoint and scheduler, so they live in its config entry)."""
    from dreamreel.core.request import GenerationRequest
    from dreamreel.engine.plan import plan_generation
    from dreamreel.engine.registry import load_backend
    from dreamreel.engine.step_cache import CacheNotAttached, calibrate_magcache

    catalog = _catalog(settings)
    entry = _entry(catalog, args.name) if catalog is not None else None
    if entry is None:
        return 2
    backend = load_backend(entry.spec)
    steps = args.steps or entry.steps or backend.default_steps
    plan = plan_generation(GenerationRequest(prompt=args.prompt), backend.native_grid(), seed=args.seed,
                           steps=steps, guidance_scale=entry.guidance or backend.default_guidance)
    try:
        ratios = calibrate_magcache(backend.pipe, steps, lambda: backend.generate(plan, lambda *_: None,
                                                                                  lambda: False))
    except CacheNotAttached as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    listed = ", ".join(f"{ratio:.4f}" for ratio in ratios)
    print(f"# MagCache ratios of {entry.name} ({steps} steps, seed {args.seed}); put them in a preset of this model:")
    print(f"[models.{entry.name}.speeds.balanced]")
    print(f'cache = {{ kind = "magcache", threshold = 0.06, interval = 3, warmup = {max(1, steps // 5)}, '
          f"ratios = [{listed}] }}")
    return 0
