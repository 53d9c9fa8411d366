"""``dreamreel models check``: is a checkpoint complete and right for its family, before a worker loads it?

A worker that loads a half-downloaded or mislabelled checkpoint fails minutes later, inside diffusers, with a
message about a missing key or a tensor shape. This reads the same facts first, in seconds, and lists every
problem in one pass (not only the first) so an operator fixes them together:

1. **files**: ``model_index.json``; for each component it names, its folder with the files that kind of
   component loads from (a model: ``config.json`` and its safetensors weights, every shard a sharded index
   maps; a tokenizer: its vocabulary files; a scheduler: ``scheduler_config.json``); every safetensors file's
   header readable and the file as long as the header says (a truncated download is caught here).
2. **classes**: each component's class importable from its library by the name ``model_index.json`` gives,
   and, for models, one the family's pipeline takes (an ``ltx-condition`` entry whose transformer is a
   ``WanTransformer3DModel`` is caught here, not as a shape error in the first job). Imports diffusers and
   transformers, so only this step (and the backends) costs their import time.
3. **weights**: stored dtype and parameter count per component, from the safetensors JSON headers alone (no
   tensor is read).
4. **memory**: the peak GPU memory estimate at each Ray resolution (16:9) and duration
   (``engine.memory.estimate_peak_bytes``), and a ``memory_budget_gb`` below what the most frugal plan needs
   at the smallest size is a problem naming both.

The family table here (:data:`FAMILY_LAYOUTS`) is also what ``dreamreel models pull`` fetches
(``engine/hub.py``): the files a check expects are the files a pull brings.
"""

from __future__ import annotations

import importlib
import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dreamreel.core.request import AspectRatio, GenerationRequest, Resolution
from dreamreel.engine.catalog import ModelEntry, checkpoint_family
from dreamreel.engine.memory import (
    GIB,
    SAFETENSORS_DTYPES,
    MemoryEstimate,
    estimate_peak_bytes,
    read_safetensors_header,
)
from dreamreel.engine.memory import native_grid as read_native_grid
from dreamreel.engine.model_dir import SETTINGS_FILE, read_settings
from dreamreel.engine.plan import native_frame_count, native_size


@dataclass(frozen=True)
class FamilyLayout:
    """What a family's checkpoint holds (diffusers layout) and which pipeline loads it."""

    pipeline: str
    """The diffusers pipeline class the family's backend loads; its ``__init__`` types say which class each
    model component must be."""
    models: tuple[str, ...]
    """Model component folders the family may load (``config.json`` + safetensors), present or not."""
    requires: tuple[str, ...] = ()
    """Components the family needs beyond the pipeline's required ones (Wan's pipeline makes both of its
    transformers optional; a two-expert family needs both)."""
    tokenizers: tuple[str, ...] = ("tokenizer",)
    schedulers: tuple[str, ...] = ("scheduler",)
    processors: tuple[str, ...] = ()
    top_level: tuple[str, ...] = ()
    """Root-level files beside the diffusers folders (glob patterns), e.g. LTX's spatial latent upsampler."""
    beside: tuple[tuple[str, str, str], ...] = ()
    """Model folders the backend loads beside the pipeline when present, which ``model_index.json`` does not name:
    ``(folder, module, class)``. Checked like a component when there (``ltx-condition``'s latent upsampler)."""

    def allow_patterns(self) -> list[str]:
        """``snapshot_download`` patterns for exactly these files (no other folder, no root checkpoint)."""
        patterns = ["model_index.json", SETTINGS_FILE]
        for name in self.models:
            patterns += [f"{name}/config.json", f"{name}/generation_config.json", f"{name}/*.safetensors",
                         f"{name}/*.safetensors.index.json"]
        for name in self.tokenizers + self.processors:
            patterns += [f"{name}/*.json", f"{name}/*.model", f"{name}/*.txt", f"{name}/*.jinja"]
        patterns += [f"{name}/scheduler_config.json" for name in self.schedulers]
        return patterns + list(self.top_level)


IGNORE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.gguf", "*.msgpack", "*.h5", "*.onnx", "*fp8*",
                   "*.fp16.*", "*.bf16.*", "*.fp32.*")
"""Never pulled: pickled or other-framework duplicates of the safetensors weights, fp8 exports, and
``variant`` copies (the backends load the plain file and cast to the configured dtype)."""

_LTX_MODELS = ("transformer", "vae", "text_encoder", "latent_upsampler")
_WAN_MODELS = ("transformer", "transformer_2", "vae", "text_encoder")

FAMILY_LAYOUTS: dict[str, FamilyLayout] = {
    # LTX-Video 0.9.x (Lightricks/LTX-Video and its -0.9.x-dev/-distilled diffusers repositories).
    "ltx-condition": FamilyLayout("LTXConditionPipeline", _LTX_MODELS,
                                  top_level=("*spatial-upscaler*.safetensors",),
                                  beside=(("latent_upsampler", "diffusers.pipelines.ltx", "LTXLatentUpsamplerModel"),)),
    # LTX-2 (Lightricks/LTX-2): video and audio VAEs, the text connectors and the vocoder beside the transformer.
    "ltx2": FamilyLayout("LTX2ConditionPipeline", (*_LTX_MODELS, "audio_vae", "connectors", "vocoder"),
                         schedulers=("scheduler", "audio_scheduler"), processors=("processor",),
                         top_level=("*spatial-upscaler*.safetensors",)),
    # Wan 2.1 (Wan-AI/Wan2.1-*-Diffusers): image-to-video checkpoints add a CLIP image encoder.
    "wan-t2v": FamilyLayout("WanPipeline", _WAN_MODELS, requires=("transformer",)),
    "wan-vace": FamilyLayout("WanVACEPipeline", _WAN_MODELS, requires=("transformer",)),
    "wan-i2v": FamilyLayout("WanImageToVideoPipeline", (*_WAN_MODELS, "image_encoder"), requires=("transformer",),
                            processors=("image_processor",)),
    "wan-flf2v": FamilyLayout("WanImageToVideoPipeline", (*_WAN_MODELS, "image_encoder"), requires=("transformer",),
                              processors=("image_processor",)),
    # Wan 2.2 TI2V-5B (Wan-AI/Wan2.2-TI2V-5B-Diffusers): one transformer.
    "wan22-ti2v": FamilyLayout("WanPipeline", _WAN_MODELS, requires=("transformer",)),
    # Wan 2.2 A14B (Wan-AI/Wan2.2-T2V-A14B-Diffusers, -I2V-A14B-): two experts, both needed.
    "wan22-t2v": FamilyLayout("WanPipeline", _WAN_MODELS, requires=("transformer", "transformer_2")),
    "wan22-i2v": FamilyLayout("WanImageToVideoPipeline", _WAN_MODELS, requires=("transformer", "transformer_2")),
}

GENERIC_LAYOUT_PATTERNS = ("model_index.json", SETTINGS_FILE, "*/config.json", "*/*.safetensors",
                           "*/*.safetensors.index.json", "*/scheduler_config.json", "*/preprocessor_config.json",
                           "tokenizer*/*")
"""What a pull fetches for a family without a row above: every diffusers folder's configs and weights."""


def layout_for(family: str) -> FamilyLayout | None:
    return FAMILY_LAYOUTS.get(family)


def allow_patterns(family: str) -> list[str]:
    layout = layout_for(family)
    return layout.allow_patterns() if layout else list(GENERIC_LAYOUT_PATTERNS)


# --- the report --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComponentFacts:
    """One component of ``model_index.json``: its class and, for a model, what its weights' headers say."""

    name: str
    library: str
    class_name: str
    kind: str
    """``model``, ``tokenizer``, ``scheduler`` or ``processor`` (from the class name)."""
    files: tuple[str, ...] = ()
    """The weight files read (relative to the checkpoint)."""
    dtype: str | None = None
    """The stored dtype holding most of its parameters (``bfloat16``, ``float32``, ...)."""
    params: int = 0
    weight_bytes: int = 0


@dataclass(frozen=True)
class MemoryRow:
    """The peak estimate for one Ray size (16:9) and duration, at the native size the planner renders it."""

    resolution: str
    seconds: int
    delivered: tuple[int, int]
    width: int
    height: int
    frames: int
    """Native width, height and frames of the one pass (``engine/plan.py``): what occupies the GPU."""
    estimate: MemoryEstimate


@dataclass(frozen=True)
class CheckReport:
    path: Path
    family: str
    name: str | None = None
    """The configured public name checked, or None for a directory."""
    pipeline: str | None = None
    components: tuple[ComponentFacts, ...] = ()
    memory: tuple[MemoryRow, ...] = ()
    budget_bytes: int | None = None
    problems: tuple[str, ...] = ()
    """Each one stops a worker from serving this checkpoint; the message says what to fix."""
    notes: tuple[str, ...] = ()
    """Facts worth knowing that stop nothing."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def params(self) -> int:
        return sum(component.params for component in self.components)


@dataclass
class _Findings:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- entry point --------------------------------------------------------------------------------------
def check(target: Path | str | ModelEntry, *, dtype: str | None = None, memory_budget_gb: float | None = None,
          family: str | None = None) -> CheckReport:
    """Check a configured model (its entry: family, dtype, budget, native grid) or a checkpoint directory.

    For a directory the family is its ``dreamreel.json``'s (else ``ltx-condition``) unless ``family`` names
    one; ``dtype`` (default ``bfloat16``, what a GPU runs) and ``memory_budget_gb`` stand in for the entry's.
    """
    found = _Findings()
    if isinstance(target, ModelEntry):
        path, name, native, family = target.path, target.name, dict(target.native), target.family
        dtype = dtype or target.dtype
        budget_gb = memory_budget_gb if memory_budget_gb is not None else target.memory_budget_gb
    else:
        path, name, native, budget_gb = Path(target), None, {}, memory_budget_gb
        dtype = dtype or "bfloat16"
    budget = None if budget_gb is None else int(budget_gb * GIB)

    def stopped(problem: str | None = None) -> CheckReport:
        """The report of a check that cannot go on (no directory, no readable model_index.json)."""
        problems = found.problems + ([problem] if problem else [])
        return CheckReport(path=path, family=family or "?", name=name, budget_bytes=budget,
                           problems=tuple(problems), notes=tuple(found.notes))

    if not path.is_dir():
        hint = (f" (`dreamreel models pull {name}` fetches {target.repo})"
                if isinstance(target, ModelEntry) and target.repo else "")
        return stopped(f"no checkpoint directory at {path}{hint}")
    _check_settings(path, found)
    if family is None:
        try:
            family = checkpoint_family(path)
        except ValueError as exc:
            return stopped(None if found.problems else str(exc))  # a bad dreamreel.json is said once
    layout = layout_for(family)
    if layout is None:
        found.notes.append(f"family {family!r} has no layout row here: files and classes are checked against "
                           "model_index.json alone")
    index = _read_index(path, found)
    if index is None:
        return stopped()
    entries = _component_entries(index)
    components = tuple(_check_files(path, component, library, class_name, found)
                       for component, (library, class_name) in entries.items())
    components += _check_beside(path, family, entries, layout, found)
    pipeline = _check_classes(entries, index, family, layout, found)
    memory: tuple[MemoryRow, ...] = ()
    if found.problems:  # an estimate reads the configs and weights just found wanting
        found.notes.append("memory estimate skipped until the problems above are fixed")
    else:
        memory = _memory_rows(family, path, dtype, native, budget, found)
    return CheckReport(path=path, family=family, name=name, pipeline=pipeline, components=components,
                       memory=memory, budget_bytes=budget, problems=tuple(found.problems),
                       notes=tuple(found.notes))


def _check_settings(path: Path, found: _Findings) -> None:
    try:
        read_settings(path)
    except (ValueError, OSError) as exc:  # json.JSONDecodeError is a ValueError
        found.problems.append(f"{path / SETTINGS_FILE}: not readable JSON ({exc})")


def _read_index(path: Path, found: _Findings) -> dict[str, Any] | None:
    index_path = path / "model_index.json"
    if not index_path.is_file():
        found.problems.append(f"{index_path} is missing: not a diffusers checkpoint (or not pulled yet)")
        return None
    try:
        index = json.loads(index_path.read_text())
    except (ValueError, OSError) as exc:
        found.problems.append(f"{index_path}: not readable JSON ({exc})")
        return None
    if not isinstance(index, dict):
        found.problems.append(f"{index_path} must hold a JSON object")
        return None
    return index


def _component_entries(index: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """``name -> (library, class)`` for each component ``model_index.json`` names (``[null, null]``: absent;
    scalar entries such as Wan's ``boundary_ratio`` are pipeline settings, not components)."""
    out: dict[str, tuple[str, str]] = {}
    for key, value in index.items():
        if key.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        library, class_name = value
        if isinstance(library, str) and isinstance(class_name, str):
            out[key] = (library, class_name)
    return out


# --- 1. files, and 3. weights --------------------------------------------------------------------------
def component_kind(class_name: str) -> str:
    """What files a component loads from, by its class name (diffusers and transformers name them so)."""
    if "Tokenizer" in class_name:
        return "tokenizer"
    if "Scheduler" in class_name:
        return "scheduler"
    if any(word in class_name for word in ("Processor", "FeatureExtractor")):
        return "processor"
    return "model"


WEIGHTS_STEM = {"diffusers": "diffusion_pytorch_model", "transformers": "model"}
"""The weights file each library's ``from_pretrained`` reads (``<stem>.safetensors`` or its sharded index)."""
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "spiece.model", "tokenizer.model", "vocab.json")


def _check_files(root: Path, name: str, library: str, class_name: str, found: _Findings) -> ComponentFacts:
    kind = component_kind(class_name)
    folder = root / name
    facts = ComponentFacts(name=name, library=library, class_name=class_name, kind=kind)
    if not folder.is_dir():
        found.problems.append(f"{name}: folder {folder} is missing (model_index.json names {class_name})")
        return facts
    if kind == "scheduler":
        _require(folder / "scheduler_config.json", name, found)
    elif kind == "tokenizer":
        if not any((folder / file).is_file() for file in TOKENIZER_FILES):
            found.problems.append(f"{name}: no tokenizer files in {folder} (one of {', '.join(TOKENIZER_FILES)})")
    elif kind == "processor":
        if not any(folder.glob("*.json")):
            found.problems.append(f"{name}: no processor config (*.json) in {folder}")
    else:
        _require(folder / "config.json", name, found)
        files = _weight_files(root, folder, name, WEIGHTS_STEM.get(library, "diffusion_pytorch_model"), found)
        return _weights_facts(root, facts, files, found)
    return facts


def _require(path: Path, name: str, found: _Findings) -> None:
    if not path.is_file():
        found.problems.append(f"{name}: {path} is missing")


def _weight_files(root: Path, folder: Path, name: str, stem: str, found: _Findings) -> list[Path]:
    single, index = folder / f"{stem}.safetensors", folder / f"{stem}.safetensors.index.json"
    if single.is_file():
        return [single]
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
            shards = sorted(set(weight_map.values()))
        except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
            found.problems.append(f"{name}: {index.relative_to(root)} is not a sharded-weights index ({exc})")
            return []
        missing = [shard for shard in shards if not (folder / shard).is_file()]
        if missing:
            found.problems.append(f"{name}: {len(missing)} of {len(shards)} shards named by "
                                  f"{index.relative_to(root)} are missing: {', '.join(missing[:4])}"
                                  + (" ..." if len(missing) > 4 else ""))
        return [folder / shard for shard in shards if (folder / shard).is_file()]
    others = sorted(p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".ckpt"))
    hint = f"; found {', '.join(others)} (only safetensors named {stem} are loaded)" if others else ""
    found.problems.append(f"{name}: no weights: {single.relative_to(root)} (or its sharded index) is missing{hint}")
    return []


def _weights_facts(root: Path, facts: ComponentFacts, files: list[Path], found: _Findings) -> ComponentFacts:
    params, nbytes = 0, 0
    by_dtype: Counter[str] = Counter()
    for file in files:
        try:
            header = read_safetensors_header(file)
        except (ValueError, OSError) as exc:
            found.problems.append(f"{facts.name}: {file.relative_to(root)} is not a readable safetensors file ({exc})")
            continue
        for key, tensor in header.items():
            if key == "__metadata__":
                continue
            count = math.prod(int(side) for side in tensor["shape"])
            params += count
            nbytes += int(tensor["data_offsets"][1]) - int(tensor["data_offsets"][0])
            by_dtype[SAFETENSORS_DTYPES.get(tensor["dtype"], tensor["dtype"].lower())] += count
    dtype = by_dtype.most_common(1)[0][0] if by_dtype else None
    return ComponentFacts(name=facts.name, library=facts.library, class_name=facts.class_name, kind=facts.kind,
                          files=tuple(str(file.relative_to(root)) for file in files), dtype=dtype, params=params,
                          weight_bytes=nbytes)


def _check_beside(root: Path, family: str, entries: Mapping[str, tuple[str, str]], layout: FamilyLayout | None,
                  found: _Findings) -> tuple[ComponentFacts, ...]:
    """The layout's :attr:`FamilyLayout.beside` folders that are present: files and weights as for a component, and
    the class their ``config.json`` names must be the one the backend loads. Absent, with only the layout's
    root-level files beside it (the original-format upsampler a pull brings): a note that it is not loaded."""
    facts = []
    for name, module, class_name in layout.beside if layout else ():
        folder = root / name
        if name in entries:
            continue
        if not folder.is_dir():
            originals = sorted(p.name for pattern in layout.top_level for p in root.glob(pattern) if p.is_file())
            if originals:
                found.notes.append(f"{', '.join(originals)}: original-format weights, not loaded; a diffusers "
                                   f"{class_name} in {name}/ would be (docs/models.md)")
            continue
        facts.append(_check_files(root, name, module, class_name, found))
        try:
            named = json.loads((folder / "config.json").read_text()).get("_class_name")
        except (ValueError, OSError, AttributeError):
            continue  # a missing or unreadable config.json is already a problem of _check_files
        if named != class_name:
            found.problems.append(f"{name}: wrong class {named} in {folder / 'config.json'}: the {family} family "
                                  f"loads {name}/ as a {class_name}")
        elif _import_class(module, class_name) is None:
            found.problems.append(f"{name}: class {class_name} cannot be imported from {module}")
        else:
            found.notes.append(f"{name}: a {class_name}, so generation runs in two stages unless dreamreel.json "
                               "sets latent_upsampler: false (docs/models.md)")
    return tuple(facts)


# --- 2. classes ----------------------------------------------------------------------------------------
def _check_classes(entries: Mapping[str, tuple[str, str]], index: Mapping[str, Any], family: str,
                   layout: FamilyLayout | None, found: _Findings) -> str | None:
    """Each class importable; each model one the family's pipeline takes; nothing it needs left out.

    Only models are held to the pipeline's types: tokenizers, schedulers and processors are interchangeable
    by design (Wan's repositories ship ``UniPCMultistepScheduler`` and ``T5TokenizerFast`` where the
    pipeline's signature names ``FlowMatchEulerDiscreteScheduler`` and ``AutoTokenizer``).
    """
    classes: dict[str, type] = {}
    for name, (library, class_name) in entries.items():
        cls = _import_class(library, class_name)
        if cls is None:
            found.problems.append(f"{name}: class {class_name} cannot be imported from {library} "
                                  "(misspelt, or from a newer library than this one)")
        else:
            classes[name] = cls
    pipeline_name = layout.pipeline if layout else index.get("_class_name")
    pipeline = _import_class("diffusers", pipeline_name) if isinstance(pipeline_name, str) else None
    if pipeline is None:
        found.notes.append(f"no diffusers pipeline {pipeline_name!r} to check the components against")
        return None
    if layout and index.get("_class_name") not in (None, pipeline_name):
        found.notes.append(f"model_index.json names {index.get('_class_name')}; the {family} family loads it "
                           f"as {pipeline_name}")
    expected_types = pipeline._get_signature_types()
    modules, _ = pipeline._get_signature_keys(pipeline)
    needed = (set(modules) - set(pipeline._optional_components)) | set(layout.requires if layout else ())
    for name in sorted(needed - set(entries)):
        found.problems.append(f"{name}: model_index.json leaves it out, and the {family} family's "
                              f"{pipeline_name} needs it")
    for name, cls in classes.items():
        if name not in modules:
            found.notes.append(f"{name}: not a component of {pipeline_name} (not loaded)")
            continue
        expected = [t for t in expected_types.get(name, ()) if isinstance(t, type) and t is not type(None)]
        if _is_model(cls) and expected and not _takes(expected, cls):
            wanted = " or ".join(t.__name__ for t in expected)
            found.problems.append(f"{name}: wrong class {cls.__name__}: the {family} family's {pipeline_name} "
                                  f"takes {wanted} (is this a checkpoint of another family?)")
    return pipeline_name


def _import_class(library: str, class_name: str) -> type | None:
    """``class_name`` from ``library`` as diffusers resolves it: a library named like one of diffusers' pipeline
    packages (LTX-2's ``["ltx2", "LTX2Vocoder"]``) is that package, anything else an importable module."""
    try:
        import diffusers.pipelines

        module = (getattr(diffusers.pipelines, library) if hasattr(diffusers.pipelines, library)
                  else importlib.import_module(library))
        cls = getattr(module, class_name, None)
    except Exception:  # a lazy module's import error (a missing optional dependency) is "no class"
        return None
    return cls if isinstance(cls, type) else None


def _takes(expected: list[type], cls: type) -> bool:
    """Whether a pipeline typed ``expected`` takes a model of class ``cls``: a subclass, or a transformers
    model of the same configuration, i.e. the same weights under another head (Wan 2.1 image-to-video
    checkpoints ship ``CLIPVisionModelWithProjection`` where the pipeline names ``CLIPVisionModel``)."""
    if issubclass(cls, tuple(expected)):
        return True
    config = getattr(cls, "config_class", None)
    return config is not None and any(getattr(t, "config_class", None) is config for t in expected)


def _is_model(cls: type) -> bool:
    """A class with weights: a diffusers ``ModelMixin`` or a transformers ``PreTrainedModel``."""
    from diffusers import ModelMixin
    from transformers import PreTrainedModel

    return issubclass(cls, ModelMixin | PreTrainedModel)


# --- 4. memory -------------------------------------------------------------------------------------------
RESOLUTIONS = (Resolution.P540, Resolution.P720, Resolution.P1080, Resolution.P4K)
DURATIONS_S = (5, 9)


def _memory_rows(family: str, path: Path, dtype: str, native: Mapping[str, int], budget: int | None,
                 found: _Findings) -> tuple[MemoryRow, ...]:
    """The estimate per Ray size and duration at the native size and frames the planner gives the request
    (what the worker runs and the API's memory guard sizes), then the budget's floor at the smallest."""
    try:
        grid = read_native_grid(family, path)
    except (ValueError, OSError) as exc:
        found.notes.append(f"no memory estimate: {exc}")
        return ()
    grid = replace(grid, **native)  # the config's short_side, fps, max_frames for this model
    rows: list[MemoryRow] = []
    for resolution in RESOLUTIONS:
        for seconds in DURATIONS_S:
            request = GenerationRequest(prompt="memory estimate", aspect_ratio=AspectRatio.LANDSCAPE,
                                        resolution=resolution, duration_s=seconds)
            (width, height), frames = native_size(request, grid), native_frame_count(seconds, grid)
            estimate = estimate_peak_bytes(family, path, width, height, frames, dtype, budget_bytes=budget)
            rows.append(MemoryRow(resolution.value, seconds, request.output_size, width, height, frames, estimate))
    smallest = min(rows, key=lambda row: row.estimate.peak_bytes)
    if budget is not None and not smallest.estimate.fits:
        found.problems.append(
            f"memory budget {human_bytes(budget)} (memory_budget_gb) is too small: even the most frugal plan "
            f"({smallest.estimate.plan}) needs {human_bytes(smallest.estimate.peak_bytes)} at the smallest size "
            f"({smallest.resolution} 16:9, {smallest.seconds} s: {smallest.width}x{smallest.height} x "
            f"{smallest.frames} frames natively)")
    return tuple(rows)


def human_bytes(n_bytes: int) -> str:
    """``n_bytes`` in GiB, or MiB / KiB where that would read as 0.00."""
    for unit, scale in (("GiB", GIB), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= scale / 100 or unit == "KiB":
            return f"{n_bytes / scale:.2f} {unit}"
    raise AssertionError("unreachable")
