"""Per-request LoRA adapters on a loaded model, through diffusers' LoRA loaders (peft).

A model's adapters are listed in the models config (``[models.NAME.loras.ADAPTER]``, ``engine/catalog.py``); a
request names the ones it wants with a scale (``GenerationRequest.loras``). For one request:

* each named adapter is loaded into the pipeline once (``load_lora_weights``) and stays there, keyed by its
  name and its file's modification time and size: later requests pay nothing, and a file replaced on disk is
  loaded afresh (the stale copy deleted);
* the request's adapters are switched on at their scales (``set_adapters``); the request's scale, else the
  config's;
* when the request ends, however it ends, every adapter is switched off (``disable_lora``): a switched-off
  peft layer calls its base layer alone, so the next request without adapters renders exactly what a pipeline
  that never saw a LoRA renders at the same seed. Adapters are never fused into the weights: fusing and
  unfusing rounds the weights, and the output would drift.

This module imports neither torch nor diffusers: it only calls the loaded pipeline's own methods.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from dreamreel.core.request import LoraRef
from dreamreel.engine.catalog import LoraEntry, ModelEntry

log = logging.getLogger("dreamreel.engine.lora")

LORA_SUFFIX = ".safetensors"


class LoraError(ValueError):
    """An adapter cannot be applied: not configured for the model, its file missing, or the family takes none."""


@dataclass(frozen=True)
class LoadedAdapter:
    """One adapter in a pipeline: the peft adapter name it was loaded under, and the file as it was then."""

    key: str
    file: Path
    stamp: tuple[int, int]
    """The file's (modification time in ns, size) at load: a different stamp means a different file."""


class AdapterCache:
    """The adapters loaded into one pipeline, by configured name; ``loads`` counts the file loads it made."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.adapters: dict[str, LoadedAdapter] = {}
        self.loads = 0

    def ensure(self, lora: LoraEntry) -> str:
        """The peft adapter name ``lora`` is loaded under, loading it first when it is absent or its file changed."""
        file = adapter_file(lora)
        stat = file.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        loaded = self.adapters.get(lora.name)
        if loaded is not None and loaded.file == file and loaded.stamp == stamp:
            return loaded.key
        if loaded is not None:  # replaced on disk (or re-pointed): the stale copy must not linger in memory
            self.pipe.delete_adapters([loaded.key])
            del self.adapters[lora.name]
        self.loads += 1
        # peft keeps adapters in ModuleDicts, whose keys may not contain '.'; the counter keeps a reload distinct.
        key = f"{re.sub(r'[^A-Za-z0-9_-]', '_', lora.name)}_{self.loads}"
        started = time.perf_counter()
        self.pipe.load_lora_weights(str(file.parent), weight_name=file.name, adapter_name=key, local_files_only=True)
        self.adapters[lora.name] = LoadedAdapter(key=key, file=file, stamp=stamp)
        log.info("loaded LoRA %s from %s in %.2fs", lora.name, file, time.perf_counter() - started)
        return key

    def switch_off(self) -> None:
        """Every adapter off: the pipeline computes exactly what it computes without them (none are fused)."""
        if self.adapters:
            self.pipe.disable_lora()


_caches: WeakKeyDictionary[Any, AdapterCache] = WeakKeyDictionary()
"""Per pipeline object: the adapters live in its modules, and go when the pipeline is dropped."""


def adapter_cache(backend: Any) -> AdapterCache:
    """The adapter cache of ``backend``'s pipeline; :class:`LoraError` for a family whose pipeline takes none."""
    pipe = getattr(backend, "pipe", None)
    if pipe is None or not hasattr(pipe, "load_lora_weights"):
        raise LoraError(f"model family {getattr(backend, 'name', type(backend).__name__)} takes no LoRA adapters")
    cache = _caches.get(pipe)
    if cache is None:
        cache = _caches[pipe] = AdapterCache(pipe)
    return cache


def adapter_file(lora: LoraEntry) -> Path:
    """The ``.safetensors`` file ``lora`` names: its ``path`` when that is a file, else ``weight_name`` inside the
    directory, else the directory's only ``.safetensors`` file. Resolved here so diffusers never takes a
    missing path for a hub id (and never goes to the network)."""
    path = lora.path
    if path.is_file():
        return path
    if not path.is_dir():
        raise LoraError(f"LoRA {lora.name!r}: no such file or directory {path}")
    if lora.weight_name is not None:
        file = path / lora.weight_name
        if not file.is_file():
            raise LoraError(f"LoRA {lora.name!r}: {lora.weight_name} not found in {path}")
        return file
    files = sorted(p for p in path.iterdir() if p.suffix == LORA_SUFFIX and p.is_file())
    if len(files) != 1:
        found = ", ".join(p.name for p in files) or "none"
        raise LoraError(f"LoRA {lora.name!r}: {path} must hold exactly one {LORA_SUFFIX} file (found: {found}); "
                        "name one with weight_name")
    return files[0]


def configured(entry: ModelEntry, ref: LoraRef) -> LoraEntry:
    """The config's row for the adapter ``ref`` names; :class:`LoraError` naming those ``entry`` offers."""
    lora = entry.loras.get(ref.name)
    if lora is None:
        offered = ", ".join(entry.loras) or "none"
        raise LoraError(f"model {entry.name} has no LoRA adapter {ref.name!r} (configured: {offered})")
    return lora


def scale_of(ref: LoraRef, lora: LoraEntry) -> float:
    """The request's scale, else the config's default."""
    return lora.scale if ref.scale is None else ref.scale


@contextmanager
def applied_loras(backend: Any, entry: ModelEntry, refs: Sequence[LoraRef]) -> Iterator[None]:
    """Run the block with ``refs`` (a request's adapters, by the names ``entry`` configures) switched on in
    ``backend``'s pipeline, and every adapter switched off after it, however it ends. No ``refs``: nothing is
    loaded or touched (adapters an earlier request loaded are already off)."""
    if not refs:
        yield
        return
    cache = adapter_cache(backend)
    try:
        keys, scales = [], []
        for ref in refs:
            lora = configured(entry, ref)
            keys.append(cache.ensure(lora))
            scales.append(scale_of(ref, lora))
        cache.pipe.enable_lora()
        cache.pipe.set_adapters(keys, adapter_weights=scales)
        yield
    finally:
        cache.switch_off()
