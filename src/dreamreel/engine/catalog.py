"""The models config (``models.toml``): which public model names this server serves, and with what.

One file, read by every process: the API (torch-free) for the names it accepts and each one's family (the
capability table), workers for what to load, ``dreamreel models`` for what to pull and check. Without a
config the embedded model serves every built-in name, as a laptop install expects.

```toml
default = "ray-2"                    # the model behind a built-in name the config leaves out (else the first)
checkpoints_dir = "checkpoints"      # where `dreamreel models pull` puts hub checkpoints (relative: to this file)

[models.ray-2]
family = "ltx-condition"             # a key of engine.registry.BACKENDS
repo = "Lightricks/LTX-Video"        # a hub checkpoint, its commit pinned ...
revision = "0123456789abcdef0123456789abcdef01234567"
# path = "/srv/models/ltx-video"     # ... or a local directory instead
device = "cuda:0"
dtype = "bfloat16"
steps = 30                           # the checkpoint's defaults (dreamreel.json, else the family's) otherwise
guidance = 3.0
memory_budget_gb = 40                # GPU memory this model may use: offload and tiling follow it
short_side = 704                     # the native grid (else the checkpoint's dreamreel.json, else the family's):
fps = 24                             #   the short side it renders at, its frame rate, its most frames per pass
max_frames = 257

speed = "quality"                    # this name's speed preset when a request names none (engine/speed.py)

[models.ray-2.speeds.fast]           # a preset's settings over the built-in ones (engine/speed.py)
steps = 15
cache = { kind = "first-block", threshold = 0.05 }

[models.ray-2.loras.pixel-art]       # adapters a request may name (`loras: [{name, scale}]`)
path = "/srv/loras/pixel-art.safetensors"
scale = 1.0                          # the scale a request that gives none gets
```

Name resolution: a configured name means what its table says; the built-in names (``ray-2``,
``ray-flash-2``) a config leaves out mean its default model (``ray-flash-2`` at its ``fast`` speed), so every
SDK's default keeps working; any other name is refused listing the served ones. A worker's ``--device``
replaces every model's ``device`` for that process (:meth:`Catalog.with_device`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dreamreel.core.request import ADAPTER_NAME_PATTERN, MODEL_NAME_PATTERN, PUBLIC_MODELS, SPEEDS
from dreamreel.engine.model_dir import read_settings
from dreamreel.engine.speed import DEFAULT_SPEEDS, SpeedError, SpeedPreset, default_speed, default_speeds, parse_speeds

DTYPES = ("float32", "bfloat16")
REVISION_LENGTH = 40
"""A pinned revision is a full commit hash: a branch or tag can move under a deployed server."""

DEFAULT_FAMILY = "ltx-condition"
"""Family of a checkpoint whose ``dreamreel.json`` is absent or names none (a plain LTX-Video export)."""


class CatalogError(ValueError):
    """The models config cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class LoraEntry:
    """One adapter a model offers: a ``.safetensors`` file (or a directory holding one) and its default scale."""

    name: str
    path: Path
    scale: float = 1.0
    weight_name: str | None = None
    """The file inside ``path`` when it is a directory holding several."""


@dataclass(frozen=True)
class ModelSpec:
    """What a worker loads: one checkpoint on one device. Names sharing a checkpoint share the loaded model."""

    family: str
    """A key of ``engine.registry.BACKENDS``: ``ltx-condition``, ``ltx2``, ``wan-t2v``, ``wan-vace``, ..."""
    path: Path
    device: str = "cpu"
    dtype: str = "float32"
    memory_budget_gb: float | None = None
    """GPU memory the model may use (GiB): the backend offloads and tiles to stay within it
    (``engine/memory.py``); None: everything resident."""
    native: tuple[tuple[str, int], ...] = ()
    """The config's native-grid keys (``short_side``, ``fps``, ``max_frames``), over the checkpoint's own
    ``dreamreel.json``."""


NATIVE_KEYS = ("short_side", "fps", "max_frames")
NATIVE_BOUNDS = {"short_side": (64, 2160), "fps": (1, 120), "max_frames": (1, 1024)}


@dataclass(frozen=True)
class ModelEntry:
    """One public name's row of the config."""

    name: str
    family: str
    path: Path
    """The checkpoint directory (for a hub checkpoint: where ``dreamreel models pull`` puts it)."""
    repo: str | None = None
    revision: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    steps: int | None = None
    guidance: float | None = None
    memory_budget_gb: float | None = None
    native: tuple[tuple[str, int], ...] = ()
    loras: Mapping[str, LoraEntry] = field(default_factory=lambda: MappingProxyType({}))
    speed: str = "quality"
    """The speed preset of a request to this name that names none."""
    speeds: Mapping[str, SpeedPreset] = field(default_factory=lambda: DEFAULT_SPEEDS)

    def preset(self, speed: str | None) -> tuple[str, SpeedPreset]:
        """The speed a request asking for ``speed`` (None: this name's own) runs at, and its preset."""
        chosen = speed or self.speed
        return chosen, self.speeds[chosen]

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(family=self.family, path=self.path, device=self.device, dtype=self.dtype,
                         memory_budget_gb=self.memory_budget_gb, native=self.native)

    def __hash__(self) -> int:  # the mappings are read-only views: hash what identifies the row
        return hash((self.name, self.spec))


@dataclass(frozen=True)
class Catalog:
    """The served public names (configured ones, then the built-in aliases of the default) and the default."""

    models: Mapping[str, ModelEntry]
    default: str
    source: Path | None = None
    """The config file, or None for the embedded-model catalog."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.models)

    @property
    def families(self) -> dict[str, str]:
        """Public name -> family: the API's capability table needs nothing more."""
        return {name: entry.family for name, entry in self.models.items()}

    @property
    def adapters(self) -> dict[str, frozenset[str]]:
        """Public name -> the LoRA adapters its config lists: what the service checks a request's ``loras`` by."""
        return {name: frozenset(entry.loras) for name, entry in self.models.items()}

    def entry(self, name: str | None) -> ModelEntry:
        """The row serving ``name`` (None: the default); ``KeyError`` naming the served ones otherwise."""
        key = self.default if name is None else name
        if key not in self.models:
            raise KeyError(f"unknown model {key!r}; this server serves: {', '.join(self.names)}")
        return self.models[key]

    def with_device(self, device: str | None) -> Catalog:
        """Every model on ``device`` (a worker's ``--device``): the flag wins over the config for one process."""
        if device is None:
            return self
        models = {name: replace(entry, device=device) for name, entry in self.models.items()}
        return replace(self, models=MappingProxyType(models))


def embedded_catalog(model_dir: Path, device: str = "cpu", dtype: str = "float32",
                     steps: int | None = None) -> Catalog:
    """No config: one checkpoint (the embedded model unless ``--model-dir`` says otherwise) serves every
    built-in name; its family comes from its ``dreamreel.json``."""
    family = checkpoint_family(Path(model_dir))
    models = {name: ModelEntry(name=name, family=family, path=Path(model_dir), device=device, dtype=dtype,
                               steps=steps, speed=default_speed(name), speeds=default_speeds(family))
              for name in PUBLIC_MODELS}
    return Catalog(models=MappingProxyType(models), default=PUBLIC_MODELS[0])


def checkpoint_family(model_dir: Path) -> str:
    """The backend family a checkpoint declares in ``dreamreel.json`` (``family``), else ``ltx-condition``.

    Not checked against the registry here: the API reads this without torch and refuses every control for a
    family it has no capability row for; loading it in the worker fails naming the family.
    """
    family = read_settings(model_dir).get("family", DEFAULT_FAMILY)
    if not isinstance(family, str) or not family:
        raise ValueError(f"{Path(model_dir)}/dreamreel.json: family must be a non-empty string, got {family!r}")
    return family


def load_catalog(path: Path, *, known_families: tuple[str, ...] | None = None) -> Catalog:
    """Read and check ``models.toml``; every problem is a :class:`CatalogError` naming the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    return parse_catalog(data, path, known_families=known_families)


def parse_catalog(data: Mapping[str, Any], path: Path, *, known_families: tuple[str, ...] | None = None) -> Catalog:
    _only_keys(data, {"default", "checkpoints_dir", "models"}, str(path))
    base = path.parent
    checkpoints = _resolve(base, Path(str(data.get("checkpoints_dir", "checkpoints"))))
    tables = data.get("models")
    if not isinstance(tables, Mapping) or not tables:
        raise CatalogError(f"{path}: [models.<name>] tables are required (at least one)")
    models: dict[str, ModelEntry] = {}
    for name, table in tables.items():
        where = f"{path}: models.{name}"
        if not _matches(MODEL_NAME_PATTERN, name):
            raise CatalogError(f"{where}: a model name is lower-case letters, digits, '.', '_' or '-' (≤ 63)")
        if not isinstance(table, Mapping):
            raise CatalogError(f"{where} must be a table")
        models[name] = _entry(name, table, where, base, checkpoints, known_families)
    default = data.get("default", next(iter(models)))
    if default not in models:
        raise CatalogError(f"{path}: default {default!r} is not one of the configured models ({', '.join(models)})")
    for builtin in PUBLIC_MODELS:  # the names every SDK sends by default keep working
        models.setdefault(builtin, replace(models[default], name=builtin, speed=default_speed(builtin)))
    return Catalog(models=MappingProxyType(models), default=default, source=path)


ENTRY_KEYS = {"family", "path", "repo", "revision", "device", "dtype", "steps", "guidance", "memory_budget_gb",
              "loras", "speed", "speeds", *NATIVE_KEYS}


def _entry(name: str, table: Mapping[str, Any], where: str, base: Path, checkpoints: Path,
           known_families: tuple[str, ...] | None) -> ModelEntry:
    _only_keys(table, ENTRY_KEYS, where)
    family = _typed(table, "family", str, where, required=True)
    if known_families is not None and family not in known_families:
        raise CatalogError(f"{where}.family: unknown family {family!r}; known: {', '.join(known_families)}")
    repo = _typed(table, "repo", str, where)
    revision = _typed(table, "revision", str, where)
    local = _typed(table, "path", str, where)
    if (repo is None) == (local is None):
        raise CatalogError(f"{where}: give exactly one of path (a local checkpoint) or repo (+ revision)")
    if repo is not None:
        if revision is None or len(revision) != REVISION_LENGTH or not _matches(r"^[0-9a-f]+$", revision):
            raise CatalogError(f"{where}.revision: a hub checkpoint is pinned to a full 40-character commit hash")
        checkpoint = checkpoints / f"{repo.replace('/', '--')}@{revision[:12]}"
    else:
        checkpoint = _resolve(base, Path(local))
    dtype = _typed(table, "dtype", str, where) or "float32"
    if dtype not in DTYPES:
        raise CatalogError(f"{where}.dtype: one of {', '.join(DTYPES)}, got {dtype!r}")
    steps = _typed(table, "steps", int, where)
    if steps is not None and not 1 <= steps <= 1000:
        raise CatalogError(f"{where}.steps: 1..1000, got {steps}")
    guidance = _number(table, "guidance", where)
    budget = _number(table, "memory_budget_gb", where)
    if budget is not None and budget <= 0:
        raise CatalogError(f"{where}.memory_budget_gb must be positive")
    speed = _typed(table, "speed", str, where) or default_speed(name)
    if speed not in SPEEDS:
        raise CatalogError(f"{where}.speed: one of {', '.join(SPEEDS)}, got {speed!r}")
    try:
        speeds = parse_speeds(table.get("speeds"), where, family)
    except SpeedError as exc:
        raise CatalogError(str(exc)) from None
    return ModelEntry(
        name=name, family=family, path=checkpoint, repo=repo, revision=revision,
        device=_typed(table, "device", str, where) or "cpu", dtype=dtype, steps=steps, guidance=guidance,
        memory_budget_gb=budget, native=_native(table, where), loras=MappingProxyType(_loras(table, where, base)),
        speed=speed, speeds=speeds,
    )


def _native(table: Mapping[str, Any], where: str) -> tuple[tuple[str, int], ...]:
    out = []
    for key in NATIVE_KEYS:
        value = _typed(table, key, int, where)
        if value is None:
            continue
        low, high = NATIVE_BOUNDS[key]
        if not low <= value <= high:
            raise CatalogError(f"{where}.{key}: {low}..{high}, got {value}")
        out.append((key, value))
    return tuple(out)


def _loras(table: Mapping[str, Any], where: str, base: Path) -> dict[str, LoraEntry]:
    loras = table.get("loras", {})
    if not isinstance(loras, Mapping):
        raise CatalogError(f"{where}.loras must be a table of adapter name -> {{path, scale}}")
    out: dict[str, LoraEntry] = {}
    for name, spec in loras.items():
        at = f"{where}.loras.{name}"
        if not _matches(ADAPTER_NAME_PATTERN, name) or not isinstance(spec, Mapping):
            raise CatalogError(f"{at}: an adapter is a table named with letters, digits, '.', '_' or '-'")
        _only_keys(spec, {"path", "scale", "weight_name"}, at)
        path = _typed(spec, "path", str, at, required=True)
        scale = _number(spec, "scale", at)
        out[name] = LoraEntry(name=name, path=_resolve(base, Path(path)), scale=1.0 if scale is None else scale,
                              weight_name=_typed(spec, "weight_name", str, at))
    return out


def _only_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _typed(table: Mapping[str, Any], key: str, kind: type, where: str, *, required: bool = False) -> Any:
    value = table.get(key)
    if value is None:
        if required:
            raise CatalogError(f"{where}.{key} is required")
        return None
    if type(value) is not kind:
        raise CatalogError(f"{where}.{key} must be a {kind.__name__}, got {value!r}")
    return value


def _number(table: Mapping[str, Any], key: str, where: str) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if type(value) not in (int, float):
        raise CatalogError(f"{where}.{key} must be a number, got {value!r}")
    return float(value)


def _matches(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern, text) is not None


def _resolve(base: Path, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (base / path)


def open_catalog(models_config: Path | None, model_dir: Path, *, device: str | None = None, dtype: str = "float32",
                 steps: int | None = None, known_families: tuple[str, ...] | None = None) -> Catalog:
    """The catalog a process serves: the config file when one is set, else the one-checkpoint catalog.

    ``device`` (a process's ``--device``) replaces every configured device; ``steps`` (``--steps``) every
    model's default steps. ``dtype`` only applies without a config (the config names each model's own).
    """
    if models_config is None:
        return embedded_catalog(model_dir, device or "cpu", dtype, steps)
    catalog = load_catalog(models_config, known_families=known_families).with_device(device)
    if steps is not None:
        catalog = replace(catalog, models=MappingProxyType(
            {name: replace(entry, steps=steps) for name, entry in catalog.models.items()}))
    return catalog
