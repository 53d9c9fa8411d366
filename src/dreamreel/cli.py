"""``dreamreel`` command line: serve, worker, generate, db upgrade/copy, workers, keys, usage, build-tiny-model.

Every flag has a ``DREAMREEL_*`` environment twin (see ``config.Settings``); flags win.
Heavy imports (torch, uvicorn) happen inside the command that needs them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, get_args

from dreamreel import accounts_cli, models_cli
from dreamreel.config import TINY_MODEL_DIR, SettingError, Settings
from dreamreel.core.concepts import supported_concepts
from dreamreel.core.logs import setup_logging
from dreamreel.core.request import DEFAULT_MODEL, MAX_DURATION_S, SPEEDS, DurationSeconds, ModifyMode
from dreamreel.engine.catalog import DEFAULT_FAMILY
from dreamreel.engine.registry import FAMILIES


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        key: value
        for key, value in vars(args).items()
        if key in Settings.model_fields and value is not None
    }
    return Settings(**overrides)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="database and files (DREAMREEL_DATA_DIR)")
    parser.add_argument("--database-url", help="sqlite:///path or postgresql://... (DREAMREEL_DATABASE_URL)")
    parser.add_argument("--storage-dir", type=Path, help="generated files, shared by all nodes (DREAMREEL_STORAGE_DIR)")
    parser.add_argument("--model-dir", type=Path, help="checkpoint directory (DREAMREEL_MODEL_DIR)")
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda:0 (DREAMREEL_DEVICE)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], help="(DREAMREEL_DTYPE)")
    parser.add_argument("--models-config", type=Path,
                        help="models.toml: public names -> checkpoints (DREAMREEL_MODELS_CONFIG)")


def _add_compile(parser: argparse.ArgumentParser) -> None:
    """The workers' compile options (``engine/compile.py``)."""
    parser.add_argument("--compile", nargs="?", const="regional", choices=["off", "regional"],
                        help="compile each model's repeated transformer blocks at load (torch.compile) and warm "
                             "them up; bare --compile means regional (DREAMREEL_COMPILE, default off)")
    parser.add_argument("--compile-backend", help="torch.compile backend: inductor (default), aot_eager, eager "
                                                  "(DREAMREEL_COMPILE_BACKEND)")


def _settings_env(settings: Settings) -> dict[str, str]:
    """Environment that makes a child process see the same settings as this one."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[f"DREAMREEL_{name.upper()}"] = (
            str(value) if not isinstance(value, list | dict) else json.dumps(value)
        )
    return env


def _existing_store(settings: Settings) -> Any:
    """The configured store, or None (said on stderr) when it is a SQLite file that does not exist: a mistyped
    ``--data-dir`` must not create an empty database to report on."""
    from dreamreel.store import open_store

    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        print(f"error: no database at {url.removeprefix('sqlite:///')} (--data-dir or --database-url)", file=sys.stderr)
        return None
    return open_store(url)


# --- serve ------------------------------------------------------------------------------------
class WorkerPool:
    """Worker subprocesses started and restarted by ``serve`` (torch never loads in the API process)."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.env = _settings_env(settings)
        self.count = count
        self.procs: list[subprocess.Popen] = []
        self.stopping = threading.Event()

    def _spawn(self, index: int) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "dreamreel.cli", "worker", "--parent-pid", str(os.getpid())]
        env = self.env
        base = int(env.get("DREAMREEL_WORKER_METRICS_PORT") or 0)
        if base:  # each worker its own metrics port, the same one again after a restart
            env = {**env, "DREAMREEL_WORKER_METRICS_PORT": str(base + index)}
        return subprocess.Popen(cmd, env=env)

    def start(self) -> None:
        self.procs = [self._spawn(index) for index in range(self.count)]
        threading.Thread(target=self._supervise, name="worker-supervisor", daemon=True).start()

    def _supervise(self) -> None:
        while not self.stopping.wait(1.0):
            for index, proc in enumerate(self.procs):
                if proc.poll() is not None and not self.stopping.is_set():
                    logging.getLogger("dreamreel.serve").warning(
                        "worker %s exited with %s; restarting", proc.pid, proc.returncode
                    )
                    self.procs[index] = self._spawn(index)

    def stop(self) -> None:
        self.stopping.set()
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 30
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from dreamreel.api.app import create_app
    from dreamreel.api.server import edge_config

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        app = create_app(settings)  # opens (and migrates) the store before workers start
    except SettingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ssl: dict[str, str] = {}
    if settings.tls_self_signed:
        from dreamreel.api.tls import ensure_self_signed

        files = ensure_self_signed(settings.data_dir / "tls", [settings.host])
        ssl = {"ssl_certfile": str(files.cert), "ssl_keyfile": str(files.key)}
        print(f"https with a local CA: clients trust it with SSL_CERT_FILE={files.ca_cert}", flush=True)
    elif settings.tls_cert is not None:
        if settings.tls_key is None:
            print("error: --tls-cert needs --tls-key", file=sys.stderr)
            return 2
        ssl = {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
    # Header/body timeouts, the connection cap, the raised open-file limit (inherited by the workers started
    # next) and the log's repeat throttle: api/server.py.
    server = uvicorn.Server(edge_config(app, settings, log_level=args.log_level, **ssl))
    pool = WorkerPool(settings, settings.workers)
    pool.start()
    if settings.api_nice and settings.workers:
        # Linux keeps a nice value per thread: this one (the event loop) and the threads it starts from now on
        # (read pool, webhooks) step down; the workers, and the supervisor thread that restarts them, do not.
        os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) + settings.api_nice)
    # uvicorn re-raises the SIGTERM it handled once it has shut down; with the default handler that kills this
    # process before the pool is stopped, and the workers die by PR_SET_PDEATHSIG instead of handing their
    # jobs back. A no-op handler lets the ``finally`` run.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run()
    finally:
        pool.stop()
    return 0 if server.started else 3  # 3: uvicorn's startup failure (e.g. the port is taken)


# --- worker -----------------------------------------------------------------------------------
def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL us if ``serve`` dies; the job's lease then lapses and it is re-queued."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


def cmd_worker(args: argparse.Namespace) -> int:
    from dreamreel.core.logthrottle import RepeatThrottle, install
    from dreamreel.worker.loop import Worker

    settings = _settings(args)
    # A store outage repeats the same warning every heartbeat: the API's throttle, in the worker too.
    install(RepeatThrottle(settings.log_repeat_limit, settings.log_repeat_window_seconds))
    parent_pid = args.parent_pid
    if parent_pid:
        _die_with_parent(parent_pid)
    worker = Worker(settings, exit_when=(lambda: os.getppid() != parent_pid) if parent_pid else None)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: worker.stop_event.set())
    worker.warm_up()
    worker.run_forever()
    worker.store.close()  # its wake-up pipe goes with it
    return 0


# --- generate ---------------------------------------------------------------------------------
def _size_arg(text: str) -> tuple[int, int]:
    """``WxH`` -> (W, H); the bounds are ``GenerationRequest``'s."""
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise argparse.ArgumentTypeError(f"expected WxH (e.g. 640x480), got {text!r}")
    return int(width), int(height)


def _lora_arg(text: str) -> dict:
    """``NAME[:SCALE]`` -> a request's ``loras`` item (no scale: the model's config gives it)."""
    name, sep, scale = text.partition(":")
    try:
        return {"name": name, "scale": float(scale)} if sep else {"name": name}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME[:SCALE] (e.g. pixel-art:0.8), got {text!r}") from None


def cmd_generate(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from dreamreel.core.capabilities import check_loras, check_supported
    from dreamreel.core.errors import DreamreelError
    from dreamreel.core.request import GenerationRequest, nearest_format
    from dreamreel.engine.inputs import InputError, LocalSources
    from dreamreel.engine.produce import produce_clip
    from dreamreel.engine.registry import load_backend

    settings = _settings(args)
    try:
        aspect_ratio, resolution = args.aspect_ratio or "16:9", args.resolution or "540p"
        if args.size is not None:  # the exact size; its nearest Ray format labels it (capabilities, metering)
            if args.aspect_ratio or args.resolution:
                raise ValueError("--size names the exact size: leave out --aspect-ratio and --resolution")
            aspect_ratio, resolution = nearest_format(*args.size)
        edit = _local_edit(args)
        request = GenerationRequest(
            prompt=args.prompt,
            model=args.model,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            size=args.size,
            duration_s=args.seconds if args.seconds is not None else int(args.duration.removesuffix("s")),
            loop=args.loop,
            keyframes=None if edit else _local_keyframes(args.start_image, args.end_image),
            concepts=(args.concept,) if args.concept else (),
            edit=edit,
            negative_prompt=args.negative_prompt,
            loras=tuple(args.lora),
            speed=args.speed,
        )
        catalog = settings.catalog()
        check_supported(request, catalog.families)
        check_loras(request, catalog.adapters)
    except (OSError, ValueError, DreamreelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    entry = catalog.entry(request.model)
    spec = entry.spec
    if not (spec.path / "model_index.json").exists():
        print(f"error: no model at {spec.path} (models/embedded ships with the repo; "
              f"`dreamreel build-tiny-model {spec.path}` builds a random one)", file=sys.stderr)
        return 2
    backend = load_backend(spec)
    loaded = time.perf_counter()
    with Progress(
        TextColumn("[bold]denoising"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(), transient=False,
    ) as progress:
        task = progress.add_task("denoising", total=None)

        def on_step(step: int, total: int) -> None:
            progress.update(task, completed=step, total=total)

        try:
            video = produce_clip(backend, entry, request, seed=args.seed, sources=LocalSources(), on_step=on_step,
                                 should_cancel=lambda: False, video_path=Path(args.output), steps=args.steps).video
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(
        f"wrote {video.path} ({video.width}x{video.height}, {video.fps} fps, {video.duration_s:.1f} s, "
        f"{video.size_bytes / 1e6:.2f} MB) in {time.perf_counter() - started:.1f} s "
        f"(model load {loaded - started:.1f} s)"
    )
    return 0


def _local_edit(args: argparse.Namespace) -> dict | None:
    """``--modify SRC`` / ``--reframe SRC``: an edit of a local video file (``--start-image`` is its first frame)."""
    if args.modify and args.reframe:
        raise ValueError("--modify and --reframe are two edits: give one")
    source = args.modify or args.reframe
    if source is None:
        return None
    if not source.is_file():
        raise ValueError(f"{source}: no such video file")
    from dreamreel.media.video_source import VideoSourceError, read_facts

    try:
        read_facts(source)  # before a model loads: a file that is not a usable video fails in a moment
    except VideoSourceError as exc:
        raise ValueError(f"media.url: {source}: {exc}") from None
    first = _local_keyframes(args.start_image, None)
    edit = {"type": "modify" if args.modify else "reframe", "source": str(source.resolve()),
            "first_frame": first["frame0"]["url"] if first else None}
    return edit | ({"mode": args.mode} if args.modify else {})


def _local_keyframes(start: Path | None, end: Path | None) -> dict | None:
    """Local image files as ``data:`` URI keyframes: the same decode and checks a served request gets."""
    import base64
    import mimetypes

    def as_keyframe(path: Path) -> dict:
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return {"type": "image", "url": f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"}

    slots = {"frame0": start, "frame1": end}
    return {slot: as_keyframe(path) for slot, path in slots.items() if path is not None} or None


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Apply the store's schema migrations now (every process also applies them when it opens the store)."""
    from dreamreel.store import upgrade_schema

    print(upgrade_schema(_settings(args).resolved_database_url))
    return 0


def cmd_workers(args: argparse.Namespace) -> int:
    """The workers that announced themselves to the store, newest heartbeat first (read from the store
    directly: no server needed, ``--database-url`` for a shared one)."""
    from rich.console import Console
    from rich.table import Table


    settings = _settings(args)
    store = _existing_store(settings)
    if store is None:
        return 2
    try:
        workers = store.list_workers(None if args.all else settings.lease_seconds)
    finally:
        store.close()
    console = Console()
    if not console.is_terminal:
        console.width = 1000  # piped: one line per worker, ids never wrapped
    if not workers:
        print("no workers announced" if args.all else "no workers seen within the lease (--all shows every one)")
        return 0
    table = Table("worker", "host", "device", "models", "current job", "last seen")
    now = time.time()
    for w in workers:
        alive = now - w.last_seen <= settings.lease_seconds
        table.add_row(w.worker_id, w.host, w.device, ", ".join(w.models) or "-", w.current_job or "-",
                      f"{max(0.0, now - w.last_seen):.0f} s ago", style=None if alive else "dim")
    console.print(table)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """The operator's picture in a terminal, read from the store (no server needed): the queue by state and
    model, the live workers and what they hold, the webhook backlog and the last failures. ``/metrics`` serves
    the same numbers to Prometheus."""
    from rich.console import Console
    from rich.table import Table

    settings = _settings(args)
    store = _existing_store(settings)
    if store is None:
        return 2
    try:
        queue = store.queue_counts()
        workers = store.list_workers(settings.lease_seconds)
        backlog = store.outbox_backlog()
        failures = store.recent_failures(args.errors)
    finally:
        store.close()
    console = Console()
    if not console.is_terminal:
        console.width = 1000  # piped: one line per row, ids never wrapped
    table = Table("state", "model", "jobs", title="Queue")
    for state, model, count in queue:
        table.add_row(state, model or "-", str(count))
    console.print(table if queue else "Queue: empty")
    busy = sum(1 for worker in workers if worker.current_job)
    table = Table("worker", "host", "device", "current job", "last seen",
                  title=f"Workers: {len(workers)} live, {busy} busy")
    now = time.time()
    for worker in workers:
        table.add_row(worker.worker_id, worker.host, worker.device, worker.current_job or "-",
                      f"{max(0.0, now - worker.last_seen):.0f} s ago")
    console.print(table if workers else "Workers: none seen within the lease")
    console.print(f"Webhook deliveries waiting: {backlog}")
    table = Table("finished", "generation", "code", "reason", title="Last failures")
    for generation in failures:
        finished = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(generation.finished_at or generation.updated_at))
        code = generation.failure_code.value if generation.failure_code else "-"
        table.add_row(finished, generation.id, code, (generation.failure_reason or "")[:200])
    console.print(table if failures else "Last failures: none")
    return 0


def cmd_db_copy(args: argparse.Namespace) -> int:
    """Copy generations, events and pending callbacks from one store to another (moving up to PostgreSQL)."""
    from dreamreel.store import open_store
    from dreamreel.store.copy import TargetNotEmpty, copy_store

    source, target = open_store(args.source), open_store(args.target)
    try:
        report = copy_store(source, target, force=args.force)  # type: ignore[arg-type]
    except TargetNotEmpty as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        source.close()
        target.close()
    for table, count in report.copied.items():
        print(f"{table}: {count} copied, {report.skipped[table]} already there")
    return 0


def cmd_build_tiny_model(args: argparse.Namespace) -> int:
    from dreamreel.engine.tiny_real import FAMILY_CONFIGS

    real = args.real or FAMILY_CONFIGS.get(args.family)
    if real is not None:  # a public checkpoint's own config, depth and width shrunk (engine/tiny_real.py)
        from dreamreel.engine.tiny_real import build_from_real_config, real_config_names

        if real not in real_config_names():
            print(f"error: no real config {real!r}; known: {', '.join(real_config_names())}", file=sys.stderr)
            return 2
        out = build_from_real_config(real, args.out_dir or TINY_MODEL_DIR.parent / f"tiny-{real}", seed=args.seed)
        print(f"built tiny model from {real}'s config in {out}")
        return 0
    if args.family == "ltx2":
        from dreamreel.engine.tiny_ltx2 import build_tiny_ltx2

        out = build_tiny_ltx2(args.out_dir or TINY_MODEL_DIR.parent / "tiny-ltx2", seed=args.seed)
        print(f"built tiny LTX-2 model (video with sound) in {out}")
        return 0
    if args.family.startswith("wan-"):
        from dreamreel.engine.tiny_wan import build_tiny_wan

        out = build_tiny_wan(args.out_dir or TINY_MODEL_DIR.parent / f"tiny-{args.family}", args.family,
                             seed=args.seed)
        print(f"built tiny Wan model ({args.family}) in {out}")
        return 0
    from dreamreel.engine.tiny_model import build_tiny_ltx

    out = build_tiny_ltx(args.out_dir or TINY_MODEL_DIR, seed=args.seed)
    print(f"built tiny LTX-Video model in {out}")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """Delete generations finished more than ``retention_days`` ago with their files, and older uploads; list
    them (``--dry-run``: only list). Ledger entries are kept. API processes also run this hourly."""
    from dreamreel.core.retention import run_retention
    from dreamreel.files import LocalFiles

    settings = _settings(args)
    if settings.retention_days is None:
        print("error: no retention period: set DREAMREEL_RETENTION_DAYS or pass --days", file=sys.stderr)
        return 2
    store = _existing_store(settings)
    if store is None:
        return 2
    try:
        report = run_retention(store, LocalFiles(settings.resolved_storage_dir), days=settings.retention_days,
                               dry_run=args.dry_run)
    finally:
        store.close()

    def when(ts: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))

    print(f"{'kind':<10}  {'id':<36}  {'owner':<24}  {'finished (UTC)':<19}  {'bytes':>12}")
    for item in report.items:
        print(f"{item.kind:<10}  {item.id:<36}  {item.owner:<24}  {when(item.finished_at):<19}  {item.bytes:>12}")
    generations = sum(item.kind == "generation" for item in report.items)
    verb = "would delete" if report.dry_run else "deleted"
    print(f"{verb} {generations} generations and {len(report.items) - generations} uploads, {report.bytes} bytes, "
          f"finished before {when(report.cutoff)} UTC" + (" (listing truncated)" if report.truncated else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dreamreel", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="API plus worker processes in one command")
    _add_common(serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="worker processes to start (DREAMREEL_WORKERS)")
    serve.add_argument("--torch-threads", type=int,
                       help="CPU threads per worker (DREAMREEL_TORCH_THREADS; default: the cores over --workers)")
    serve.add_argument("--public-url", help="base URL clients reach this server at")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--tls-self-signed", action="store_const", const=True, default=None,
                       help="serve https with a locally generated CA (clients trust <data-dir>/tls/ca.pem)")
    serve.add_argument("--tls-cert", type=Path, help="serve https with this certificate chain (PEM)")
    serve.add_argument("--tls-key", type=Path, help="private key for --tls-cert (PEM)")
    serve.add_argument("--insecure-no-auth", action="store_const", const=True, default=None,
                       help="serve without API keys on a non-loopback address (DREAMREEL_INSECURE_NO_AUTH)")
    _add_compile(serve)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="an extra worker against the same store")
    _add_common(worker)
    worker.add_argument("--parent-pid", type=int, default=0, help=argparse.SUPPRESS)
    worker.add_argument("--torch-threads", type=int,
                        help="CPU threads this worker computes with (DREAMREEL_TORCH_THREADS; default: the "
                             "cores over DREAMREEL_WORKERS, which defaults to 1)")
    _add_compile(worker)
    worker.set_defaults(func=cmd_worker)

    generate = sub.add_parser("generate", help="make one video locally, no server needed")
    _add_common(generate)
    generate.add_argument("prompt")
    generate.add_argument("-o", "--output", default="out/video.mp4")
    generate.add_argument("--model", default=DEFAULT_MODEL,
                          help="public model name (ray-2, ray-flash-2, or one the models config names)")
    generate.add_argument("--negative-prompt", help="what the model is steered away from")
    generate.add_argument("--aspect-ratio", help="Ray aspect ratio (default 16:9)")
    generate.add_argument("--resolution", help="Ray resolution (default 540p)")
    generate.add_argument("--size", type=_size_arg, metavar="WxH",
                          help="exact delivered size, e.g. 640x480 (instead of --aspect-ratio/--resolution)")
    length = generate.add_mutually_exclusive_group()
    length.add_argument("--duration", default="5s", choices=[f"{s}s" for s in get_args(DurationSeconds)])
    length.add_argument("--seconds", type=int, metavar="N", help=f"any whole length, 1 to {MAX_DURATION_S} s")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--lora", type=_lora_arg, action="append", default=[], metavar="NAME[:SCALE]",
                          help="a LoRA adapter the model's config lists, at SCALE (default: the config's); repeatable")
    generate.add_argument("--speed", choices=SPEEDS, default=None,
                          help="speed preset: quality, balanced or fast (default: the model name's own; "
                               "ray-flash-2 is fast)")
    generate.add_argument("--steps", type=int, default=None, help="denoising steps (the speed preset's)")
    generate.add_argument("--start-image", type=Path, help="image the video starts from (keyframes.frame0)")
    generate.add_argument("--end-image", type=Path, help="image the video ends on (keyframes.frame1)")
    generate.add_argument("--loop", action="store_true", help="make the end flow back into the start")
    generate.add_argument("--concept", choices=supported_concepts(), help="camera concept (Luma's concepts)")
    generate.add_argument("--modify", type=Path, metavar="VIDEO",
                          help="modify this video under the prompt (video-to-video; keeps its aspect and length)")
    generate.add_argument("--mode", default="flex_1", choices=[m.value for m in ModifyMode],
                          help="how far --modify may go from the source (adhere_1 closest .. reimagine_3 freest)")
    generate.add_argument("--reframe", type=Path, metavar="VIDEO",
                          help="reframe this video to --aspect-ratio, generating what lies outside it")
    generate.set_defaults(func=cmd_generate)

    db = sub.add_parser("db", help="the job store: schema migrations, copying to another store")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply the schema migrations this database lacks")
    _add_common(upgrade)
    upgrade.set_defaults(func=cmd_db_upgrade)
    copy = db_sub.add_parser("copy", help="copy a store's generations, events and callbacks into another")
    copy.add_argument("--from", dest="source", required=True, help="e.g. sqlite:///data/dreamreel.db")
    copy.add_argument("--to", dest="target", required=True, help="e.g. postgresql://user@host/db")
    copy.add_argument("--force", action="store_true", help="copy into a target that already holds generations")
    copy.set_defaults(func=cmd_db_copy)

    workers = sub.add_parser("workers", help="list the workers that announced themselves to the store")
    _add_common(workers)
    workers.add_argument("--all", action="store_true",
                         help="include workers not seen within the lease (stopped or crashed)")
    workers.set_defaults(func=cmd_workers)

    status = sub.add_parser("status", help="the queue, the workers and the last failures, read from the store")
    _add_common(status)
    status.add_argument("--errors", type=int, default=5, help="how many of the last failures to show (default 5)")
    status.set_defaults(func=cmd_status)

    accounts_cli.add_parsers(sub, _add_common, _settings)
    models_cli.add_parsers(sub, _add_common, _settings)

    retention = sub.add_parser("retention", help="delete generations and uploads older than the retention period")
    _add_common(retention)
    retention.add_argument("--days", dest="retention_days", type=float,
                           help="delete what finished more than this many days ago (DREAMREEL_RETENTION_DAYS)")
    retention.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    retention.set_defaults(func=cmd_retention)

    tiny = sub.add_parser("build-tiny-model", help="build an offline tiny random model (LTX-Video by default)")
    tiny.add_argument("out_dir", type=Path, nargs="?", default=None,
                      help="where to build it (default: models/tiny-ltx, or models/tiny-<family> for wan-* and ltx2)")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument("--family", choices=FAMILIES, default=DEFAULT_FAMILY,
                      help="architecture of the tiny model (its dreamreel.json names it for the server)")
    tiny.add_argument("--real", default=None, metavar="NAME",
                      help="build it from a public checkpoint's config (src/dreamreel/engine/real_configs/NAME.json: "
                           "its shapes kept, depth and width shrunk); the Wan 2.2 families always are")
    tiny.set_defaults(func=cmd_build_tiny_model)
    return parser


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand's ``func`` with logging set up (also the lab's CLI)."""
    setup_logging()  # text, or one JSON object per line with DREAMREEL_LOG_FORMAT=json (core/logs.py)
    args = parser.parse_args(argv)
    return args.func(args)


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
