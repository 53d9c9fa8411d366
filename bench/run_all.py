"""Every benchmark in one command (``make bench``): run each, print its table, rewrite the sections it owns.

The registry below names each benchmark's script, its arguments and its section of ``docs/benchmarks.md``.
A section is owned when the doc holds its marker lines, ``<!-- bench:ID -->`` and ``<!-- /bench:ID -->``:
only the text between them is replaced (the command, the machine, the date and the script's own output), so
hand-written prose around them and every unmarked section stay byte for byte as they were. Each script runs
alone under ``flock /tmp/bench.lock`` (the lock every timing run on the machine takes), one after another,
stopped at its timeout once it holds the lock. A script that fails, times out or is missing leaves its
section as it was; the others still run, and the command exits non-zero. A registered section without its
markers is reported before anything runs, and its benchmark is not run (its table would have nowhere to go). The
doc is written after each success, so an interrupted run keeps what it measured.

The scripts do the measuring: each interleaves its comparisons and prints a Markdown table with medians and
spreads; ``--repeats N`` is passed to the scripts that take it (5, the issue's minimum, where the registry
names none).

Usage: .venv/bin/python bench/run_all.py [--only ID[,ID]] [--list] [--dry-run] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
LOCK = Path("/tmp/bench.lock")
LOCK_WAIT_S = 3600.0
"""How long a benchmark may wait for the lock (another timing run holding the machine) before it fails."""
MIN_REPEATS = 5
"""Issue 30's rule: every comparison at least 5 times, interleaved."""


@dataclass(frozen=True)
class Bench:
    """One registered benchmark and the section of the doc it owns."""

    id: str
    """The marker's name: ``<!-- bench:ID -->`` … ``<!-- /bench:ID -->``."""
    title: str
    """The section's heading in docs/benchmarks.md, for messages and ``--list``."""
    script: str
    """A file in bench/."""
    args: tuple[str, ...] = ()
    """The arguments the doc's numbers are measured with."""
    timeout_s: float = 900.0
    """Wall-clock limit of the run once it holds the lock."""
    needs_postgres: bool = False
    """Runs against DREAMREEL_TEST_POSTGRES_URL (from scripts/ensure_postgres.sh when unset)."""
    repeats_option: str = "--repeats"
    """The script's option for how many times each comparison runs (``--runs`` in one)."""
    bench_dir: Path = field(default=ROOT / "bench", compare=False)

    @property
    def path(self) -> Path:
        return self.bench_dir / self.script

    def takes_repeats(self) -> bool:
        """Whether the script has its repeats option (read from its source: no import, no torch start-up)."""
        return f'"{self.repeats_option}"' in self.path.read_text(encoding="utf-8")

    def argv(self, repeats: int | None) -> list[str]:
        """The registered arguments; ``repeats`` replaces their repeats option, and a script that takes the option
        without it registered gets the issue's minimum, 5."""
        args = list(self.args)
        if not self.takes_repeats():
            return args
        option = self.repeats_option
        if option in args:
            if repeats is not None:
                args[args.index(option) + 1] = str(repeats)
        else:
            args += [option, str(repeats if repeats is not None else MIN_REPEATS)]
        return args


BENCHMARKS: tuple[Bench, ...] = (
    Bench("overhead", "Our own overhead: served against a bare script (`bench/bench_overhead.py`)",
          "bench_overhead.py", ("--repeats", "7"), timeout_s=900),
    Bench("wakeup", "Wake-up latency of an idle worker (`bench/bench_wakeup.py`)",
          "bench_wakeup.py", (), timeout_s=600, needs_postgres=True),
    Bench("claim-race", "Claim race between workers (`bench/bench_claim_race.py`)",
          "bench_claim_race.py", (), timeout_s=600, needs_postgres=True),
    Bench("speed-presets", "Speed presets (`bench/bench_speed_presets.py`)",
          "bench_speed_presets.py", ("speed", "--repeats", "5"), timeout_s=900),  # its quality run takes hours
    Bench("compile", "Regional compilation (`bench/bench_compile.py`)", "bench_compile.py", (), timeout_s=1200),
    Bench("encode-presets", "x264 preset per speed preset (`bench/bench_encode_presets.py`)",
          "bench_encode_presets.py", (), timeout_s=900),
    Bench("api-load", "The API under load (`bench/bench_api_load.py`)", "bench_api_load.py", ("--repeats", "5"),
          timeout_s=1500),
    Bench("metrics-cost", "What serving /metrics costs the polls (`bench/bench_metrics_cost.py`)",
          "bench_metrics_cost.py", ("--repeats", "5"), timeout_s=900),
    Bench("two-workers", "Two workers on one machine (`bench/bench_two_workers.py`)",
          "bench_two_workers.py", ("--runs", "3"), timeout_s=3600, repeats_option="--runs"),
    Bench("encode", "H.264 encoding per output size (`bench/bench_encode.py`)", "bench_encode.py", (),
          timeout_s=600),
    Bench("preview", "progress_video overhead (`bench/bench_preview.py`)", "bench_preview.py",
          ("--steps", "60", "--repeats", "5"), timeout_s=900),
    Bench("generate", "End-to-end generation (`bench/bench_generate.py`): Embedded model", "bench_generate.py",
          ("--model-dir", "models/embedded", "--cases", "540p:5s", "--repeats", "5"), timeout_s=900),
    Bench("generate-tiny", "End-to-end generation (`bench/bench_generate.py`): Tiny random LTX model",
          "bench_generate.py", ("--repeats", "5"), timeout_s=1800),
)


class SectionError(Exception):
    """A registered section whose markers are missing, repeated or out of order in the doc."""


def markers(bench_id: str) -> tuple[str, str]:
    return f"<!-- bench:{bench_id} -->", f"<!-- /bench:{bench_id} -->"


def locate(text: str, bench: Bench) -> tuple[int, int]:
    """The span of the body between the bench's marker lines: from after the opening line to the closing one."""
    opening, closing = markers(bench.id)
    starts = [m for m in re.finditer(rf"^{re.escape(opening)}[ \t]*\r?$\n?", text, re.M)]
    ends = [m for m in re.finditer(rf"^{re.escape(closing)}[ \t]*\r?$", text, re.M)]
    if len(starts) != 1 or len(ends) != 1:
        raise SectionError(
            f"section {bench.title!r} ({bench.id}): the doc needs exactly one `{opening}` line and one "
            f"`{closing}` line, found {len(starts)} and {len(ends)}")
    if ends[0].start() < starts[0].end():
        raise SectionError(f"section {bench.title!r} ({bench.id}): `{closing}` comes before `{opening}`")
    return starts[0].end(), ends[0].start()


def replace_section(text: str, bench: Bench, body: str) -> str:
    """``text`` with only the body between ``bench``'s markers replaced by ``body``."""
    start, end = locate(text, bench)
    return text[:start] + body.rstrip("\n") + "\n\n" + text[end:]  # a blank line ends a table before the marker


def read_doc(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as f:  # newline="": line endings kept as they are
        return f.read()


def write_doc(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def machine() -> str:
    """CPU model (lscpu), cores and RAM: what the doc's sections name as their machine."""
    model = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    ram = ""
    try:
        kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
        ram = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{model}, {os.cpu_count()} cores{ram}"


def shown_command(bench: Bench, argv: Sequence[str]) -> str:
    """The command as a reader reruns it from the repository root."""
    python = Path(sys.executable)
    shown_python = (os.path.relpath(python, ROOT) if python.is_relative_to(ROOT) else python.name)
    try:
        script = bench.path.relative_to(ROOT)
    except ValueError:
        script = bench.path
    return shlex.join([shown_python, str(script), *argv])


def section_body(bench: Bench, command: str, output: str, measured: datetime, host: str) -> str:
    return (
        f"Command: `{command}` (by `make bench`: `bench/run_all.py --only {bench.id}`)\\\n"
        f"Machine: {host}\\\n"
        f"Measured: {measured:%Y-%m-%d %H:%M %Z}.\n\n"
        f"{output.strip()}\n"
    )


@dataclass
class Outcome:
    bench: Bench
    status: str
    """``ok`` or why not."""
    wall_s: float | None = None
    """From the start to the end of the run, waiting for the lock included."""
    output: str = ""
    doc: str = "left as it was"


TIMED_OUT = (124, 137)
"""coreutils ``timeout``'s exit codes: the run was stopped (TERM, then KILL 10 s later)."""


def run_one(bench: Bench, argv: Sequence[str], lock: Path, env: dict[str, str]) -> Outcome:
    """The script under the lock, its run bounded by ``timeout`` once the lock is held, in its own process group
    (killed whole if the lock never comes); stderr passes through to the terminal."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["flock", str(lock), "timeout", "--kill-after=10", f"{bench.timeout_s:.0f}", sys.executable,
         str(bench.path), *argv],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        stdout, _ = proc.communicate(timeout=LOCK_WAIT_S + bench.timeout_s + 30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Outcome(bench, f"failed: {lock} stayed held for over {LOCK_WAIT_S:.0f} s",
                       time.perf_counter() - started)
    wall = time.perf_counter() - started
    if proc.returncode in TIMED_OUT:
        return Outcome(bench, f"timed out after {bench.timeout_s:.0f} s", wall, stdout)
    if proc.returncode != 0:
        return Outcome(bench, f"failed: exit code {proc.returncode} (its stderr is above)", wall, stdout)
    if "|---" not in stdout:
        return Outcome(bench, "failed: printed no Markdown table", wall, stdout)
    return Outcome(bench, "ok", wall, stdout)


def postgres_env(env: dict[str, str]) -> dict[str, str]:
    """The environment with DREAMREEL_TEST_POSTGRES_URL set, as the Makefile's test target sets it."""
    if env.get("DREAMREEL_TEST_POSTGRES_URL"):
        return env
    url = subprocess.run([str(ROOT / "scripts" / "ensure_postgres.sh")], capture_output=True, text=True,
                         check=True).stdout.strip()
    return {**env, "DREAMREEL_TEST_POSTGRES_URL": url}


def run_all(benches: Sequence[Bench], doc: Path = DOC, lock: Path = LOCK, repeats: int | None = None,
            dry_run: bool = False, out: TextIO = sys.stdout) -> int:
    """Run ``benches`` in order and rewrite their sections of ``doc``; 0 when every one succeeded."""
    text = read_doc(doc)
    outcomes: list[Outcome] = []
    runnable: list[Bench] = []
    for bench in benches:
        if not bench.path.is_file():
            outcomes.append(Outcome(bench, f"missing script: {bench.path} does not exist"))
            continue
        try:
            start, end = locate(text, bench)
        except SectionError as error:
            outcomes.append(Outcome(bench, f"not run: {error}"))
            continue
        runnable.append(bench)
        if dry_run:
            first, last = text.count("\n", 0, start) + 1, text.count("\n", 0, end)
            lines = f"lines {first}-{last}" if last >= first else f"an empty body at line {first}"
            print(f"{bench.id}: would run `{shown_command(bench, bench.argv(repeats))}` under flock {lock} "
                  f"(timeout {bench.timeout_s:.0f} s) and replace {lines} of {doc}", file=out)
    for outcome in outcomes:
        print(f"ERROR {outcome.bench.id}: {outcome.status}", file=out)
    if dry_run:
        return 1 if outcomes else 0

    host, env = machine(), dict(os.environ)
    for bench in runnable:
        argv = bench.argv(repeats)
        command = shown_command(bench, argv)
        print(f"\n== {bench.id}: {command}", file=out, flush=True)
        try:
            if bench.needs_postgres:
                env = postgres_env(env)
        except (OSError, subprocess.CalledProcessError) as error:
            outcomes.append(Outcome(bench, f"failed: no PostgreSQL ({error})"))
            continue
        outcome = run_one(bench, argv, lock, env)
        print(outcome.output.rstrip() or "(no output)", file=out)
        if outcome.status == "ok":
            body = section_body(bench, command, outcome.output, datetime.now().astimezone(), host)
            try:
                write_doc(doc, replace_section(read_doc(doc), bench, body))
                outcome.doc = "rewritten"
            except SectionError as error:  # the doc was edited while the benchmark ran
                outcome.status = f"failed: {error}"
        else:
            print(f"ERROR {bench.id}: {outcome.status}", file=out)
        outcomes.append(outcome)
        out.flush()

    order = {bench.id: i for i, bench in enumerate(benches)}
    outcomes.sort(key=lambda o: order[o.bench.id])
    print(f"\n| benchmark | section | status | wall s (lock wait included) | {doc.name} |", file=out)
    print("|---|---|---|---|---|", file=out)
    for o in outcomes:
        wall = f"{o.wall_s:.0f}" if o.wall_s is not None else "-"
        print(f"| {o.bench.id} | {o.bench.title} | {o.status} | {wall} | {o.doc} |", file=out)
    return 0 if all(o.status == "ok" for o in outcomes) else 1


def select(only: str | None, registry: Sequence[Bench] = BENCHMARKS) -> list[Bench]:
    if not only:
        return list(registry)
    known = {bench.id: bench for bench in registry}
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[name] for name in wanted]


def list_benchmarks(benches: Sequence[Bench], doc: Path, out: TextIO = sys.stdout) -> None:
    text = read_doc(doc)
    print("| id | section | command | script | markers |", file=out)
    print("|---|---|---|---|---|", file=out)
    for bench in benches:
        script = "present" if bench.path.is_file() else "MISSING"
        try:
            locate(text, bench)
            marked = "present"
        except SectionError:
            marked = "MISSING"
        args = bench.argv(None) if bench.path.is_file() else bench.args
        print(f"| {bench.id} | {bench.title} | `{shown_command(bench, args)}` | {script} | {marked} |", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated benchmark ids (see --list)")
    parser.add_argument("--list", action="store_true", help="list the registry and whether each section is marked")
    parser.add_argument("--dry-run", action="store_true", help="run nothing; print the commands and what each "
                        "would replace in the doc")
    parser.add_argument("--repeats", type=int, help="passed to the scripts that take --repeats (two-workers: "
                        "--runs), >= 5")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < MIN_REPEATS:
        parser.error("--repeats must be >= 5 (issue 30: each comparison at least 5 times)")
    benches = select(args.only)
    if args.list:
        list_benchmarks(benches, args.doc)
        return 0
    return run_all(benches, args.doc, LOCK, args.repeats, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
