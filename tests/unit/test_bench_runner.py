"""``make bench``'s runner (bench/run_all.py): it rewrites only the text between a benchmark's marker lines in
docs/benchmarks.md, leaves every other byte alone, keeps a failed or missing benchmark's section as it was, and
names a section whose markers are missing. Real scripts run in real subprocesses under a real ``flock`` (on a
private lock file, so a timing run holding the machine's lock cannot stall the suite)."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_runner():
    """bench/ is not a package: load the runner from its file, as ``python bench/run_all.py`` does."""
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "bench" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


run_all = load_runner()

DOC = (
    "# Benchmarks\r\n"  # a CRLF line and trailing spaces: kept byte for byte
    "\n"
    "## Someone else's section  \n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n"
    "\n"
    "## Good\n"
    "\n"
    "Prose before, kept.\n"
    "<!-- bench:good -->\n"
    "old good body\n"
    "<!-- /bench:good -->\n"
    "Prose after, kept.\n"
    "\n"
    "## Bad\n"
    "<!-- bench:bad -->\n"
    "old bad body\n"
    "<!-- /bench:bad -->\n"
    "\n"
    "## Gone\n"
    "<!-- bench:gone -->\n"
    "old gone body\n"
    "<!-- /bench:gone -->\n"
    "<!-- bench:slow -->\n"
    "old slow body\n"
    "<!-- /bench:slow -->\n"
    "tail without a newline"
)

GOOD = """import sys
# takes "--repeats"
print("| case | median s | min..max s |")
print("|---|---|---|")
print("| argv | " + " ".join(sys.argv[1:]) + " | - |")
"""
BAD = """import sys
print("| half a table |")
print("|---|")
sys.exit(3)
"""


def bench(bench_dir: Path, bench_id: str, script: str, *args: str, timeout_s: float = 60) -> object:
    return run_all.Bench(bench_id, f"{bench_id.title()} section", script, args, timeout_s=timeout_s,
                         bench_dir=bench_dir)


def test_replace_section_changes_only_the_body_between_the_markers() -> None:
    good = run_all.Bench("good", "Good", "x.py")
    new = run_all.replace_section(DOC, good, "| new | table |\n|---|---|\n")
    start = DOC.index("<!-- bench:good -->\n") + len("<!-- bench:good -->\n")
    end = DOC.index("<!-- /bench:good -->")
    assert new[:start] == DOC[:start] and new[-(len(DOC) - end):] == DOC[end:]  # every other byte as it was
    assert new[start:new.index("<!-- /bench:good -->")] == "| new | table |\n|---|---|\n\n"
    again = run_all.replace_section(new, good, "second")  # the markers stay: a rerun replaces the body again
    assert "second\n\n<!-- /bench:good -->" in again and "| new |" not in again and again.count("bench:good") == 2


@pytest.mark.parametrize("doc, found", [
    ("## Good\nno markers here\n", "found 0 and 0"),
    ("<!-- bench:good -->\na\n<!-- /bench:good -->\n<!-- bench:good -->\n<!-- /bench:good -->\n", "found 2 and 2"),
    ("<!-- bench:goodish -->\n<!-- /bench:goodish -->\n", "found 0 and 0"),  # another id is not this one
    ("<!-- /bench:good -->\n<!-- bench:good -->\n", "comes before"),
])
def test_a_missing_or_broken_marker_is_an_error_naming_the_section(doc: str, found: str) -> None:
    with pytest.raises(run_all.SectionError, match=r"section 'Good section' \(good\).*" + found):
        run_all.locate(doc, run_all.Bench("good", "Good section", "x.py"))


def test_run_all_rewrites_successes_and_leaves_failed_missing_and_unmarked_sections(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "bad.py").write_text(BAD)
    (tmp_path / "unmarked.py").write_text("open(__file__ + '.ran', 'w')\nprint('|x|\\n|---|')\n")
    (tmp_path / "slow.py").write_text("import time\nprint('|x|\\n|---|', flush=True)\ntime.sleep(30)\n")
    doc = tmp_path / "benchmarks.md"
    doc.write_bytes(DOC.encode())
    benches = [bench(tmp_path, "good", "good.py", "--repeats", "5", "--size", "a b"),
               bench(tmp_path, "bad", "bad.py", "--repeats", "5"),  # no "--repeats" in its source: not passed
               bench(tmp_path, "gone", "gone.py"),
               bench(tmp_path, "unmarked", "unmarked.py"),
               bench(tmp_path, "slow", "slow.py", timeout_s=1)]
    out = io.StringIO()

    code = run_all.run_all(benches, doc, tmp_path / "lock", repeats=6, out=out)

    assert code == 1
    text = doc.read_bytes().decode()
    start, end = text.index("<!-- bench:good -->\n"), text.index("<!-- /bench:good -->")
    body = text[start:end]
    assert "old good body" not in body
    assert "| argv | --repeats 6 --size a b | - |" in body  # --repeats replaced, the quoted argument intact
    assert "Command: `" in body and "good.py --repeats 6 --size 'a b'`" in body
    assert "Machine: " in body and " cores" in body and "Measured: 20" in body
    assert text[:start] == DOC[:DOC.index("<!-- bench:good -->\n")]
    assert text[end:] == DOC[DOC.index("<!-- /bench:good -->"):]  # failed, missing, timed out: as they were
    assert not (tmp_path / "unmarked.py.ran").exists()  # not run: its output would have nowhere to go
    report = out.getvalue()
    assert "| good | Good section | ok |" in report
    assert "| bad | Bad section | failed: exit code 3" in report
    assert f"missing script: {tmp_path / 'gone.py'} does not exist" in report
    assert "ERROR unmarked: not run: section 'Unmarked section' (unmarked)" in report
    assert "| slow | Slow section | timed out after 1 s |" in report


def test_dry_run_runs_nothing_and_says_what_it_would_replace(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text("open(__file__ + '.ran', 'w')\n" + GOOD)
    doc = tmp_path / "benchmarks.md"
    doc.write_bytes(DOC.encode())
    out = io.StringIO()

    code = run_all.run_all([bench(tmp_path, "good", "good.py")], doc, tmp_path / "lock", dry_run=True, out=out)

    assert code == 0 and doc.read_bytes() == DOC.encode() and not (tmp_path / "good.py.ran").exists()
    assert "good.py --repeats 5`" in out.getvalue()  # the minimum where none is registered
    assert "replace lines 12-12 of" in out.getvalue()  # "old good body", the 12th line


MARKED = ("overhead", "wakeup", "claim-race", "encode", "preview", "generate", "generate-tiny")
"""The sections of docs/benchmarks.md marked for ``make bench`` so far (``run_all.py --list`` shows the rest)."""


def test_the_marked_sections_of_the_doc_are_registered_with_their_scripts() -> None:
    text = run_all.read_doc(run_all.DOC)
    registry = {b.id: b for b in run_all.BENCHMARKS}
    assert len(registry) == len(run_all.BENCHMARKS)  # ids are unique
    for bench_id in MARKED:
        bench = registry[bench_id]
        assert bench.path.is_file(), bench.path
        run_all.locate(text, bench)  # raises SectionError naming the section
    assert registry["overhead"].argv(6) == ["--repeats", "6"] and registry["overhead"].argv(None) == ["--repeats", "7"]
    assert registry["encode"].argv(6) == []  # bench_encode.py takes no repeats: nothing passed
