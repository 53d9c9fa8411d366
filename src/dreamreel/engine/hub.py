"""``dreamreel models pull``: a configured hub checkpoint fetched at its pinned commit, only the files its family loads.

The download is ``huggingface_hub.snapshot_download``, the real client, so everything it honours applies:
``HF_ENDPOINT`` (a mirror), ``HF_TOKEN`` (gated repositories), its per-file progress bars. Two things are added:

* **The pin is checked first.** The hub is asked which commit the pinned revision is
  (``/api/models/{repo}/revision/{rev}``); a different answer (a mirror serving another snapshot) is refused
  before any file is fetched, naming both hashes, since a checkpoint that is not the configured one would be
  served under the configured name.
* **Only what the family loads** (``engine/checkpoint.py``'s :data:`FAMILY_LAYOUTS`): ``model_index.json``,
  each component folder's config and safetensors weights, tokenizer and scheduler files, LTX's latent
  upsampler; never the root-level original checkpoints, ``.bin``/``.pt``/``.gguf`` duplicates, fp8 exports or
  ``variant`` copies, which together are often larger than what is used.

Resuming: a dropped connection is resumed by the client within the run with a ``Range`` request from the
last byte received; files already complete (their commit recorded in ``<dir>/.cache/huggingface``) are not
fetched again by a later run, so an interrupted pull is finished by running it again.
"""

from __future__ import annotations

from pathlib import Path

from dreamreel.engine.catalog import ModelEntry
from dreamreel.engine.checkpoint import IGNORE_PATTERNS, allow_patterns


class PullError(RuntimeError):
    """The checkpoint could not be pulled as configured; the message says why and what to do."""


class NothingToPull(PullError):
    """The model is a local directory (``path``), not a hub checkpoint."""


def pull(entry: ModelEntry, *, progress: bool = True, endpoint: str | None = None) -> Path:
    """Fetch ``entry``'s checkpoint into ``entry.path`` and return it; :class:`PullError` when it cannot
    (:class:`NothingToPull` for a local checkpoint). ``endpoint`` defaults to ``HF_ENDPOINT``'s hub."""
    if entry.repo is None or entry.revision is None:
        raise NothingToPull(f"{entry.name} is the local checkpoint {entry.path}: nothing to pull")
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    where = f"{entry.repo}@{entry.revision}"
    try:
        info = HfApi(endpoint=endpoint).model_info(entry.repo, revision=entry.revision)
    except RepositoryNotFoundError as exc:
        raise PullError(f"{entry.repo}: no such repository on the hub (or it is private/gated and no HF_TOKEN "
                        f"grants access): {_first_line(exc)}") from exc
    except RevisionNotFoundError as exc:
        raise PullError(f"{entry.repo}: the hub has no revision {entry.revision} (the pinned commit)") from exc
    except Exception as exc:  # unreachable, refused, an HTTP error: none of them tells which commit it is
        raise PullError(f"{where}: {endpoint or constants.ENDPOINT} did not say which commit this is: "
                        f"{type(exc).__name__}: {_first_line(exc)}") from exc
    if info.sha != entry.revision:
        raise PullError(f"refusing to pull {entry.repo} for {entry.name}: the hub reports commit {info.sha} "
                        f"for the revision pinned in the models config, {entry.revision}. Nothing was downloaded; "
                        "pin the commit you mean to serve (or point HF_ENDPOINT at a hub that has it).")

    quiet = not progress and not are_progress_bars_disabled()
    if quiet:
        disable_progress_bars()
    try:
        snapshot_download(repo_id=entry.repo, revision=entry.revision, local_dir=entry.path, endpoint=endpoint,
                          allow_patterns=allow_patterns(entry.family), ignore_patterns=list(IGNORE_PATTERNS))
    except Exception as exc:  # network, HTTP and disk errors alike: say so, and that a rerun resumes
        raise PullError(f"pulling {where} into {entry.path} stopped: {type(exc).__name__}: {_first_line(exc)}. "
                        "Run the same command again: files already complete are kept.") from exc
    finally:
        if quiet:
            enable_progress_bars()
    return entry.path


def checkpoint_files(path: Path) -> list[Path]:
    """The files of a pulled checkpoint, without the client's bookkeeping under ``.cache``."""
    return sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.relative_to(path).parts)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
