"""Speed presets: ``quality``, ``balanced`` and ``fast``, per model, and what each one changes.

Ray 2 is sold in two speeds (``ray-2``, ``ray-flash-2``); open servers reach theirs with fewer steps, step
caches (diffusers' cache hooks: the transformer skips or predicts work between steps) and a faster encode. A
preset is such a bundle; every model has all three (the built-in ones below, each key overridable in the models
config), a request picks one with the ``speed`` field, and a public name has its own default (``ray-flash-2``:
``fast``). Torch-free: the API and the config reader use it; ``engine/step_cache.py`` turns a preset's cache into
diffusers hooks in the worker.

```toml
[models.ray-2]
speed = "quality"                    # the name's speed when a request names none

[models.ray-2.speeds.fast]           # any preset key left out keeps the built-in value
steps = 8                            # absolute steps (else steps_fraction of the model's steps)
steps_fraction = 0.8
guidance = 3.0                       # else the model's guidance
guidance_from = 0.4                  # the first 40 % of the steps run the conditional pass alone (LTX families)
cache = { kind = "first-block", threshold = 0.05 }   # or "taylorseer" / "pab" (interval, warmup), "none",
                                     # "magcache" (threshold, interval, warmup, ratios from `models calibrate`)
x264_preset = "superfast"            # else media.x264.X264_PRESETS[speed]
```

The built-in presets were chosen on the embedded model (docs/benchmarks.md, "Speed presets"): ``balanced`` keeps
every step and skips the transformer where its first block's output barely moved (First Block Cache, threshold
0.05); ``fast`` runs 80 % of the steps, the first half of them without guidance's unconditional pass
(``guidance_from``, ``engine/guidance.py``), with the same cache: twice as fast client-seen, and on the held-out
eval no attribute's 95 % bound below -2 points (60 % of the steps, every one guided, cost the same and lost 1.8
points of motion). Families that cannot take the window (Wan's) run 60 % of the steps instead. A real
checkpoint's best values differ (a distilled one has few steps to cut): its config sets them, measured on that
model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from dreamreel.core.request import SPEEDS
from dreamreel.media.x264 import LIBX264_PRESETS

CACHE_KINDS = ("none", "first-block", "taylorseer", "pab", "magcache")
"""Step caches a preset may use: diffusers' ``FirstBlockCacheConfig``, ``TaylorSeerCacheConfig``,
``PyramidAttentionBroadcastConfig`` and ``MagCacheConfig``."""


class SpeedError(ValueError):
    """A preset's settings cannot be used; the message names the key."""


@dataclass(frozen=True)
class CacheSpec:
    """A step cache on the model's transformer(s), re-armed for every job (``engine/step_cache.py``).

    * ``first-block``: after the first transformer block, when its output's residual moved less than
      ``threshold`` (relative mean absolute change) since the last full pass, the rest of the blocks are skipped
      and their last residual reused;
    * ``taylorseer``: every transformer block runs fully on the first ``warmup`` steps and then every ``interval``
      steps; in between its output is extrapolated from a first-order Taylor series of its last full outputs;
    * ``pab`` (Pyramid Attention Broadcast): in the middle of the schedule (timesteps 800 to 100) each
      self-attention layer runs every ``interval`` steps and re-uses its last output in between;
    * ``magcache``: the blocks after the first are skipped (their last residual reused) while the error
      accumulated from the model's calibrated per-step magnitude ratios (``ratios``) stays under ``threshold``,
      at most ``interval`` steps in a row and never in the first ``warmup`` steps. The ratios belong to one
      checkpoint and scheduler: ``dreamreel models calibrate NAME`` measures them and prints the table.
    """

    kind: str = "none"
    threshold: float = 0.05
    interval: int = 2
    warmup: int = 4
    ratios: tuple[float, ...] = ()
    """MagCache's magnitude ratios, one per step of the calibration run (resampled to a job's steps)."""

    def __post_init__(self) -> None:
        if self.kind not in CACHE_KINDS:
            raise SpeedError(f"kind: one of {', '.join(CACHE_KINDS)}, got {self.kind!r}")
        if not 0 < self.threshold < 1:
            raise SpeedError(f"threshold: between 0 and 1, got {self.threshold!r}")
        if not 1 <= self.interval <= 16:
            raise SpeedError(f"interval: 1..16, got {self.interval!r}")
        if not 0 <= self.warmup <= 1000:
            raise SpeedError(f"warmup: 0..1000, got {self.warmup!r}")
        if self.kind == "magcache" and not self.ratios:
            raise SpeedError("ratios: a magcache needs the model's calibrated magnitude ratios; "
                             "`dreamreel models calibrate NAME` measures them")
        if not all(0 < ratio < 10 for ratio in self.ratios):
            raise SpeedError("ratios: each a magnitude ratio between 0 and 10")

    @property
    def enabled(self) -> bool:
        return self.kind != "none"


@dataclass(frozen=True)
class SpeedPreset:
    """What one speed changes for a model; ``None`` keeps the model's own value."""

    steps: int | None = None
    """Denoising steps; None: ``steps_fraction`` of the model's."""
    steps_fraction: float = 1.0
    guidance: float | None = None
    guidance_from: float = 0.0
    """Fraction of the steps, from the first, that skip classifier-free guidance's unconditional pass
    (``engine/guidance.py``); 0: every step is guided."""
    cache: CacheSpec = field(default_factory=CacheSpec)
    x264_preset: str | None = None
    """libx264 preset of the delivered clip; None: ``media.x264.X264_PRESETS`` for this speed."""

    def __post_init__(self) -> None:
        if self.steps is not None and not 1 <= self.steps <= 1000:
            raise SpeedError(f"steps: 1..1000, got {self.steps!r}")
        if not 0 < self.steps_fraction <= 1:
            raise SpeedError(f"steps_fraction: in (0, 1], got {self.steps_fraction!r}")
        if self.guidance is not None and not 0 <= self.guidance <= 50:
            raise SpeedError(f"guidance: 0..50, got {self.guidance!r}")
        if not 0 <= self.guidance_from < 1:
            raise SpeedError(f"guidance_from: in [0, 1), got {self.guidance_from!r}")
        if self.guidance_from and self.cache.kind == "magcache":
            raise SpeedError("guidance_from: a magcache counts its calibrated steps and cannot be reset when guidance "
                             "starts; use another cache or none")
        if self.x264_preset is not None and self.x264_preset not in LIBX264_PRESETS:
            raise SpeedError(f"x264_preset: one of {', '.join(LIBX264_PRESETS)}, got {self.x264_preset!r}")

    def steps_for(self, model_steps: int) -> int:
        """Steps this preset runs on a model whose own setting is ``model_steps`` (at least one)."""
        if self.steps is not None:
            return self.steps
        return max(1, round(model_steps * self.steps_fraction))


FIRST_BLOCK_DEFAULT = CacheSpec(kind="first-block", threshold=0.05)

DEFAULT_SPEEDS: Mapping[str, SpeedPreset] = MappingProxyType({
    "quality": SpeedPreset(),
    "balanced": SpeedPreset(cache=FIRST_BLOCK_DEFAULT),
    "fast": SpeedPreset(steps_fraction=0.8, guidance_from=0.5, cache=FIRST_BLOCK_DEFAULT),
})
"""Every model's presets unless its family or config says otherwise (the module docstring says how they were
chosen)."""

FAST_WITHOUT_WINDOW = SpeedPreset(steps_fraction=0.6, cache=FIRST_BLOCK_DEFAULT)
"""``fast`` for a family that cannot take a guidance window (Wan's): fewer steps instead, at about the same cost
(on the embedded model 60 % of the steps fully guided ran 1.96x native, 80 % with the first half unguided
1.85-1.91x; the window keeps more of the motion: docs/benchmarks.md)."""

NO_FIRST_BLOCK_CACHE = frozenset({"ltx2"})
"""Families whose transformer block diffusers' First Block Cache does not know (its block registry in diffusers
0.42.1 lacks ``LTX2VideoTransformerBlock``, which returns the video and the audio stream): their built-in presets
use TaylorSeer instead, and a config asking them for ``first-block`` is refused."""

TAYLORSEER_DEFAULT = CacheSpec(kind="taylorseer", interval=2, warmup=4)

BATCHED_GUIDANCE = frozenset({"ltx-condition", "ltx2"})
"""Families whose pipeline runs guidance's two passes as one batch: the ones a ``guidance_from`` window can halve
(Wan's pipelines run the passes in turn and take none)."""


def default_speeds(family: str) -> Mapping[str, SpeedPreset]:
    """The built-in presets of a model of ``family``."""
    presets = dict(DEFAULT_SPEEDS)
    if family not in BATCHED_GUIDANCE:
        presets["fast"] = FAST_WITHOUT_WINDOW
    if family in NO_FIRST_BLOCK_CACHE:
        presets = {speed: replace(preset, cache=TAYLORSEER_DEFAULT) if preset.cache.enabled else preset
                   for speed, preset in presets.items()}
    return MappingProxyType(presets)


DEFAULT_SPEED_OF = MappingProxyType({"ray-flash-2": "fast"})
"""A public name's own speed when neither the request nor the config names one; every other name: ``quality``."""

PRESET_KEYS = {"steps", "steps_fraction", "guidance", "guidance_from", "cache", "x264_preset"}
CACHE_KEYS = {"kind", "threshold", "interval", "warmup", "ratios"}


def default_speed(name: str) -> str:
    return DEFAULT_SPEED_OF.get(name, "quality")


def parse_speeds(table: Any, where: str, family: str) -> Mapping[str, SpeedPreset]:
    """A model's ``speeds`` table (``{quality|balanced|fast: {key: value}}``) over its family's
    :func:`default_speeds`."""
    if table is None:
        return default_speeds(family)
    if not isinstance(table, Mapping):
        raise SpeedError(f"{where}.speeds must be a table of {' / '.join(SPEEDS)} -> settings")
    unknown = sorted(set(table) - set(SPEEDS))
    if unknown:
        raise SpeedError(f"{where}.speeds: unknown preset(s) {', '.join(unknown)}; the presets: {', '.join(SPEEDS)}")
    presets = dict(default_speeds(family))
    for speed, settings in table.items():
        presets[speed] = _preset(presets[speed], settings, f"{where}.speeds.{speed}")
        if family in NO_FIRST_BLOCK_CACHE and presets[speed].cache.kind == "first-block":
            raise SpeedError(f"{where}.speeds.{speed}.cache: diffusers' first-block cache does not support the "
                             f"{family} transformer; use taylorseer")
        if family not in BATCHED_GUIDANCE and presets[speed].guidance_from:
            raise SpeedError(f"{where}.speeds.{speed}.guidance_from: the {family} pipeline runs guidance's passes in "
                             f"turn; a guidance window needs one of {', '.join(sorted(BATCHED_GUIDANCE))}")
    return MappingProxyType(presets)


def _preset(base: SpeedPreset, settings: Any, where: str) -> SpeedPreset:
    if not isinstance(settings, Mapping):
        raise SpeedError(f"{where} must be a table")
    _only(settings, PRESET_KEYS, where)
    changes: dict[str, Any] = {}
    if "steps" in settings:
        changes["steps"] = _int(settings["steps"], f"{where}.steps")
    if "steps_fraction" in settings:
        changes["steps_fraction"] = _float(settings["steps_fraction"], f"{where}.steps_fraction")
    if "guidance" in settings:
        changes["guidance"] = _float(settings["guidance"], f"{where}.guidance")
    if "guidance_from" in settings:
        changes["guidance_from"] = _float(settings["guidance_from"], f"{where}.guidance_from")
    if "x264_preset" in settings:
        changes["x264_preset"] = settings["x264_preset"]
    if "cache" in settings:
        changes["cache"] = _cache(settings["cache"], f"{where}.cache")
        if changes["cache"].kind == "magcache" and "guidance_from" not in settings:
            changes["guidance_from"] = 0.0  # a magcache counts every step guided unless the table says otherwise
    try:
        return replace(base, **changes)
    except SpeedError as exc:
        raise SpeedError(f"{where}.{exc}") from None


def _cache(value: Any, where: str) -> CacheSpec:
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, Mapping):
        raise SpeedError(f"{where}: a cache kind ({', '.join(CACHE_KINDS)}) or a table with kind and its settings")
    _only(value, CACHE_KEYS, where)
    changes: dict[str, Any] = {"kind": value.get("kind", "none")}
    if "threshold" in value:
        changes["threshold"] = _float(value["threshold"], f"{where}.threshold")
    for key in ("interval", "warmup"):
        if key in value:
            changes[key] = _int(value[key], f"{where}.{key}")
    if "ratios" in value:
        ratios = value["ratios"]
        if not isinstance(ratios, list) or not ratios:
            raise SpeedError(f"{where}.ratios must be a list of numbers, got {ratios!r}")
        changes["ratios"] = tuple(_float(ratio, f"{where}.ratios") for ratio in ratios)
    try:
        return CacheSpec(**changes)
    except SpeedError as exc:
        raise SpeedError(f"{where}.{exc}") from None


def _only(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SpeedError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _int(value: Any, where: str) -> int:
    if type(value) is not int:
        raise SpeedError(f"{where} must be an integer, got {value!r}")
    return value


def _float(value: Any, where: str) -> float:
    if type(value) not in (int, float):
        raise SpeedError(f"{where} must be a number, got {value!r}")
    return float(value)
