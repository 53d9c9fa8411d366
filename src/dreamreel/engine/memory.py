"""How much GPU memory a generation needs, and the cheapest way to run it within a budget. No torch.

The API process imports this to refuse, at submission, a request that cannot fit a model's
``memory_budget_gb`` (``api/memory_guard.py``); a worker's backend to pick the plan it runs a request
with (``backends/common.apply_memory_plan``); ``dreamreel models check`` to print the estimate per size.
Everything is read from the checkpoint's files without loading a weight: each component's parameter count
from its safetensors headers, the transformer's width and patching and the VAE's compression from their
``config.json``, falling back to the family's published facts (:data:`FAMILIES`).

**These are estimates, not measurements.** The peak is modelled as weights + the largest activations of
the phase that peaks + a fixed runtime overhead; the activation factors below are round numbers derived
from the tensors the blocks hold, checked against published figures (named where each constant is), and
expected within tens of percent. ``bench/device_check.sh`` measures the real peak on a GPU.

Plans, cheapest in speed first (each keeps the savings of the ones before it):

============== =====================================================================================
plan           what runs on the GPU
============== =====================================================================================
resident       every component, all the time
vae_tiling     the same, with the VAE decoding tile by tile (``vae.enable_tiling()``)
model_offload  one component at a time (diffusers ``enable_model_cpu_offload``): the largest one
               (for Wan 2.2 A14B, one of its two 14B experts), plus its activations
group_offload  a few leaf modules at a time (diffusers ``enable_group_offload``, leaf level, with a
               prefetch stream): about two tensors of weights, plus the activations
============== =====================================================================================
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from dreamreel.engine.model_dir import read_settings
from dreamreel.engine.plan import NativeGrid

GIB = 2**30

PLANS = ("resident", "vae_tiling", "model_offload", "group_offload")
"""In order of cost in speed (and of memory saved): the first whose peak fits a budget is chosen."""
TILED_PLANS = frozenset(PLANS[1:])
"""Plans that decode with a tiled VAE."""

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
"""Bytes per parameter and per activation at the runtime dtype (``load_pipeline`` casts every component)."""

SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "BF16": "bfloat16", "F16": "float16", "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
    "BOOL": "bool",
}
"""safetensors' dtype names (its format spec) as torch spells them."""

MAX_HEADER_BYTES = 100 * 2**20
"""A safetensors header is a JSON index of tensor names and shapes: anything bigger is not one."""

ACTIVATION_FACTOR = 32
"""Transformer activations per latent token, in multiples of its hidden width, at the block that peaks.

Why 32: a DiT block with fused (flash / memory-efficient) attention holds the block's input and its
normed copy (2), q, k and v (3), the attention output and its projection (2), the feed-forward's inner
activations before and after the nonlinearity (LTX-Video: 4x the width each, 8), the residual (1),
per-token modulations (LTX-Video: six width-sized ones per token, 6), and q and k rotated in float32
(twice a bfloat16 copy each, 4): 26, rounded up for the allocator's slack. No attention matrix: diffusers
calls ``scaled_dot_product_attention``, which never materialises the tokens x tokens scores on a GPU.

Checked against the published figures (GB = 10^9 bytes; the estimates are GiB):

* Wan 2.1 T2V-1.3B, 832x480x81, bfloat16: 8.19 GB peak on one RTX 4090 with ``--offload_model True
  --t5_cpu`` (Wan-Video/Wan2.1 README, "Computational Efficiency"). The estimate's denoising phase is
  2.6 GiB of weights + 3.0 GiB of activations + overhead = 6.1 GiB (7.6 GiB published); the official code
  rotates q and k in float64 complex numbers (``rope_apply`` in ``wan/modules/model.py``), which diffusers
  does not. (Under diffusers' model offload the 5.7 B umT5 encoder, 10.6 GiB, comes onto the GPU too, and
  is this checkpoint's ``model_offload`` peak.)
* Wan 2.2 TI2V-5B, 1280x704x121: runs on one 24 GB GPU with ``--offload_model True --convert_model_dtype
  --t5_cpu`` (Wan-Video/Wan2.2 README). Estimate: ``model_offload`` 14.8 GiB, ``resident`` 26.7 GiB.
* Wan 2.2 A14B, 1280x720x81: "at least 80GB VRAM" on one GPU (Wan-Video/Wan2.2 README). Estimate:
  ``resident`` (both experts) 87.6 GiB, ``model_offload`` (one expert) 50.2 GiB.
* LTX-Video 0.9.7-dev 13B transformer alone, bfloat16: 25.21 GB peak, 1.04 GB with leaf-level group offload
  (diffusers/benchmarks dataset, ``collated_results.py``: a small input, so the weights dominate).
  Estimate: 24.3 GiB of transformer weights; leaf-level group offload holds ~0.25 GiB of them.
"""

RUNTIME_OVERHEAD_BYTES = GIB // 2
"""What a CUDA process holds besides tensors: the context, cuBLAS/cuDNN workspaces and the caching
allocator's fragmentation, about 0.3-0.6 GiB on an H100 with torch 2.x (the CUDA context alone is
~300-500 MB, the figure PyTorch's CUDA semantics notes give for "CUDA context" memory)."""

VAE_COPIES = 4
"""Tensors of the decoder's widest stage alive at once: a resnet's input, its normed copy, its convolution's
output and the residual sum. Times that stage's channels per output pixel (:func:`vae_pixel_elements`)."""


@dataclass(frozen=True)
class FamilyFacts:
    """What shapes a family's memory, as its published checkpoints have it (a checkpoint's own configs win).

    The native-grid fields mirror the backends' defaults (``LTX_DEFAULTS``, ``WAN_DEFAULTS``) so the API,
    without torch, sizes a request as the worker will (:func:`native_grid`)."""

    spatial: int
    """VAE spatial compression (pixels per latent pixel along a side)."""
    temporal: int
    """VAE temporal compression (``frames = temporal * k + 1``)."""
    patch: tuple[int, int, int]
    """Transformer patch (t, h, w): latent pixels per token."""
    hidden: int
    """Transformer width (heads x head dim) of the family's largest published checkpoint."""
    cfg_batch: int
    """2 where the pipeline runs guidance's two passes as one batch (LTX), 1 where it runs them in turn (Wan)."""
    decode_frames: int | None
    """Pixel frames the VAE decodes at once: None for the whole clip (LTX's VAE), else a causal decoder's chunk
    (Wan's decodes one latent frame, ``temporal`` pixel frames, at a time with a feature cache)."""
    tile: int
    """Side of a tiled decode's tile in pixels (diffusers' defaults: ``AutoencoderKLLTXVideo`` 512,
    ``AutoencoderKLWan`` 256)."""
    vae_elements: int
    """Elements per output pixel at the decoder's widest stage, when the VAE config does not say."""
    short_side: int
    fps: int
    max_frames: int
    pipeline_multiple: int = 1
    """A side multiple the pipeline enforces beyond the VAE x patch (``LTXConditionPipeline``: 32)."""


_LTX = FamilyFacts(spatial=32, temporal=8, patch=(1, 1, 1), hidden=4096, cfg_batch=2, decode_frames=None, tile=512,
                   vae_elements=VAE_COPIES * 16, short_side=512, fps=24, max_frames=257, pipeline_multiple=32)
_WAN21 = FamilyFacts(spatial=8, temporal=4, patch=(1, 2, 2), hidden=5120, cfg_batch=1, decode_frames=4, tile=256,
                     vae_elements=VAE_COPIES * 96, short_side=480, fps=16, max_frames=81)
FAMILIES: dict[str, FamilyFacts] = {
    # LTX-Video 0.9.x (Lightricks/LTX-Video): VAE 32x32 spatial, 8x temporal, 128 latent channels, patch 1;
    # 2B width 2048 (32 heads x 64), 13B width 4096 (32 x 128). Decoder 0.9.5+: widest stage 256 channels at
    # 1/4 resolution (patch 4): 16 per pixel.
    "ltx-condition": _LTX,
    # LTX-2 (Lightricks/LTX-2): video VAE 32x/8x like LTX-Video, patch 1, 19 B with a video width of 4096
    # (32 x 128); the audio VAE and vocoder are small beside it and their activations are not modelled.
    "ltx2": _LTX,
    # Wan 2.1 (Wan-AI/Wan2.1-*-Diffusers): VAE 8x spatial, 4x temporal (z_dim 16), patch (1, 2, 2); 1.3B width
    # 1536, 14B width 5120. Decoder base_dim 96 at full resolution.
    "wan-t2v": _WAN21,
    "wan-i2v": _WAN21,
    "wan-flf2v": FamilyFacts(**{**_WAN21.__dict__, "short_side": 720}),
    "wan-vace": _WAN21,
    # Wan 2.2 TI2V-5B (Wan-AI/Wan2.2-TI2V-5B-Diffusers): VAE 16x16 spatial, 4x temporal, z_dim 48, patch
    # (1, 2, 2): 32 px per token; width 3072; 1280x704 at 24 fps, 121 frames. Decoder base 256 at 1/2 (patch 2).
    "wan22-ti2v": FamilyFacts(spatial=16, temporal=4, patch=(1, 2, 2), hidden=3072, cfg_batch=1, decode_frames=4,
                              tile=256, vae_elements=VAE_COPIES * 64, short_side=704, fps=24, max_frames=121),
    # Wan 2.2 A14B (Wan-AI/Wan2.2-T2V-A14B-Diffusers, -I2V-): Wan 2.1's VAE and patching, two 14B experts
    # (``transformer`` for high noise, ``transformer_2`` for low), width 5120; 720p by default (480p too) at
    # 16 fps, 81 frames.
    "wan22-t2v": FamilyFacts(**{**_WAN21.__dict__, "short_side": 720}),
    "wan22-i2v": FamilyFacts(**{**_WAN21.__dict__, "short_side": 720}),
}
"""Family -> facts. A family missing here cannot be estimated (:func:`estimate_peak_bytes` raises)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """The estimated GPU memory of one generation under one plan (bytes)."""

    weights_bytes: int
    """Weights on the GPU at the peak: every component (resident, vae_tiling), the largest component
    (model_offload) or a few tensors (group_offload)."""
    activations_bytes: int
    """Activations at the peak: the transformer's for the denoising, or the VAE's for the decode."""
    peak_bytes: int
    """``weights_bytes + activations_bytes`` + :data:`RUNTIME_OVERHEAD_BYTES`."""
    plan: str
    """One of :data:`PLANS`."""
    fits: bool
    """Within the budget asked about (True when none was)."""


@dataclass(frozen=True)
class _Component:
    parameters: int
    dtype: str
    largest: int
    """Elements of its largest tensor (a leaf module's weight, what group offload holds at once)."""


def checkpoint_parameters(path: Path) -> dict[str, tuple[int, str]]:
    """Component folder -> (parameter count, dtype most of them are stored in), from the safetensors headers
    alone (8-byte little-endian header length, then a JSON of names, dtypes and shapes): no weight is read.

    A sharded component (``*.safetensors.index.json``) counts the shards its index names; a folder holding a
    plain file and dtype variants of it (``diffusion_pytorch_model.fp16.safetensors``) counts the plain one.
    Cached by the files' paths, sizes and modification times."""
    return {name: (part.parameters, part.dtype) for name, part in _components(Path(path)).items()}


def _components(path: Path) -> dict[str, _Component]:
    return _read_components(path.resolve(), _signature(path))


def _signature(path: Path) -> tuple[tuple[str, int, int], ...]:
    """What the cache key watches: every weight file and index beside a component's config."""
    found = []
    if path.is_dir():
        for folder in sorted(p for p in path.iterdir() if p.is_dir()):
            for file in sorted(folder.iterdir()):
                if file.name.endswith((".safetensors", ".safetensors.index.json")):
                    stat = file.stat()
                    found.append((f"{folder.name}/{file.name}", stat.st_size, stat.st_mtime_ns))
    return tuple(found)


@lru_cache(maxsize=32)
def _read_components(path: Path, signature: tuple[tuple[str, int, int], ...]) -> dict[str, _Component]:
    components: dict[str, _Component] = {}
    for folder in sorted({entry[0].split("/")[0] for entry in signature}):
        tensors: list[tuple[str, int]] = []
        for file in _weight_files(path / folder):
            tensors.extend(_header_tensors(file))
        if not tensors:
            continue
        by_dtype: dict[str, int] = {}
        for dtype, count in tensors:
            by_dtype[dtype] = by_dtype.get(dtype, 0) + count
        components[folder] = _Component(parameters=sum(by_dtype.values()), dtype=max(by_dtype, key=by_dtype.get),
                                        largest=max(count for _, count in tensors))
    return components


def _weight_files(folder: Path) -> list[Path]:
    """The files that make one copy of a component's weights (see :func:`checkpoint_parameters`)."""
    indexes = sorted(folder.glob("*.safetensors.index.json"))
    if indexes:
        index = min(indexes, key=lambda p: (p.name.count("."), p.name))  # the plain index before a variant's
        shards = sorted(set(json.loads(index.read_text()).get("weight_map", {}).values()))
        return [folder / shard for shard in shards]
    files = sorted(folder.glob("*.safetensors"))
    plain = [f for f in files if f.name.count(".") == 1]
    return plain or files[:1]


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (8-byte little-endian length, then JSON); no tensor is read.

    Raises ``ValueError`` for a file that is not one, or shorter than its header says (a cut-off download).
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError("shorter than a safetensors header")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"header length {length} does not fit the file ({size} bytes)")
        header = json.loads(handle.read(length))
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
    if 8 + length + end > size:
        raise ValueError(f"truncated: the header describes {8 + length + end} bytes, the file has {size}")
    return header


def _header_tensors(file: Path) -> list[tuple[str, int]]:
    """(dtype, element count) of every tensor a safetensors file holds, from its header."""
    header = read_safetensors_header(file)
    return [(SAFETENSORS_DTYPES.get(info["dtype"], info["dtype"].lower()), math.prod(info["shape"]))
            for name, info in header.items() if name != "__metadata__"]


def _config(path: Path, folder: str) -> dict[str, Any]:
    file = path / folder / "config.json"
    if not file.is_file():
        return {}
    return _read_json(file.resolve(), file.stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _read_json(file: Path, mtime_ns: int) -> dict[str, Any]:
    data = json.loads(file.read_text())
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class _Shape:
    """A checkpoint's shape-defining facts: its configs' where they say, else its family's."""

    spatial: int
    temporal: int
    patch: tuple[int, int, int]
    hidden: int
    vae_elements: int


def _facts(family: str) -> FamilyFacts:
    if family not in FAMILIES:
        raise ValueError(f"no memory facts for model family {family!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[family]


def _shape(family: str, checkpoint: Path) -> _Shape:
    facts = _facts(family)
    transformer, vae = _config(checkpoint, "transformer"), _config(checkpoint, "vae")
    heads, head_dim = transformer.get("num_attention_heads"), transformer.get("attention_head_dim")
    hidden = heads * head_dim if isinstance(heads, int) and isinstance(head_dim, int) else facts.hidden
    patch = facts.patch
    if isinstance(transformer.get("patch_size"), list) and len(transformer["patch_size"]) == 3:
        patch = tuple(int(p) for p in transformer["patch_size"])  # type: ignore[assignment]  # Wan: (t, h, w)
    elif isinstance(transformer.get("patch_size"), int):  # LTX: spatial patch_size, temporal patch_size_t
        patch = (int(transformer.get("patch_size_t") or 1), transformer["patch_size"], transformer["patch_size"])
    spatial, temporal = _vae_compression(vae, facts)
    return _Shape(spatial=spatial, temporal=temporal, patch=patch, hidden=hidden,
                  vae_elements=vae_pixel_elements(vae, facts))


def _vae_compression(vae: dict[str, Any], facts: FamilyFacts) -> tuple[int, int]:
    """(spatial, temporal) as the VAE class computes them from its config (diffusers 0.42)."""
    if vae.get("spatial_compression_ratio") and vae.get("temporal_compression_ratio"):
        return int(vae["spatial_compression_ratio"]), int(vae["temporal_compression_ratio"])
    if vae.get("scale_factor_spatial") and vae.get("scale_factor_temporal"):  # AutoencoderKLWan
        return int(vae["scale_factor_spatial"]), int(vae["scale_factor_temporal"])
    scaling = vae.get("spatio_temporal_scaling")
    if isinstance(scaling, list):  # AutoencoderKLLTXVideo: patch_size * 2 ** (number of 2x stages)
        stages = sum(bool(s) for s in scaling)
        return int(vae.get("patch_size", 1)) * 2**stages, int(vae.get("patch_size_t", 1)) * 2**stages
    downsample = vae.get("temperal_downsample")
    if isinstance(downsample, list):  # older AutoencoderKLWan configs
        return 2 ** len(downsample), 2 ** sum(bool(d) for d in downsample)
    return facts.spatial, facts.temporal


def vae_pixel_elements(vae: dict[str, Any], facts: FamilyFacts) -> int:
    """Elements alive per output pixel at the decoder's widest stage: :data:`VAE_COPIES` x its channels /
    the VAE's pixel patch area. LTX: ``decoder_block_out_channels[0]`` at ``1 / patch_size`` resolution;
    Wan: ``decoder_base_dim`` (else ``base_dim``) at ``1 / patch_size`` (Wan 2.2) or full resolution."""
    patch = int(vae.get("patch_size") or 1)
    channels = vae.get("decoder_block_out_channels") or vae.get("block_out_channels")
    if isinstance(channels, list) and channels:
        return max(1, VAE_COPIES * int(channels[0]) // patch**2)
    base = vae.get("decoder_base_dim") or vae.get("base_dim")
    if isinstance(base, int):
        return max(1, VAE_COPIES * base // patch**2)
    return facts.vae_elements


def native_grid(family: str, checkpoint: Path, overrides: Mapping[str, Any] | None = None) -> NativeGrid:
    """The grid a loaded checkpoint of ``family`` generates on, read without loading it: side multiple the
    VAE x patch (and the pipeline's own multiple), frames ``temporal * k + 1``, and the short side, fps and
    frame limit of ``overrides`` (a models config's native-grid keys) over its ``dreamreel.json``, else the
    family's defaults. What the backends compute after loading (``_compute_grid``), for the API process."""
    facts, shape = _facts(family), _shape(family, Path(checkpoint))
    settings = {**read_settings(Path(checkpoint)), **(overrides or {})}
    side = shape.spatial * math.lcm(shape.patch[1], shape.patch[2])
    return NativeGrid(short_side=int(settings.get("short_side", facts.short_side)),
                      size_multiple=math.lcm(side, facts.pipeline_multiple),
                      frame_multiple=shape.temporal * shape.patch[0],
                      fps=int(settings.get("fps", facts.fps)),
                      max_frames=int(settings.get("max_frames", facts.max_frames)))


def latent_tokens(family: str, checkpoint: Path, width: int, height: int, frames: int) -> int:
    """Transformer tokens of one clip: latent frames x latent rows x latent columns, over the patch."""
    shape = _shape(family, Path(checkpoint))
    pt, ph, pw = shape.patch
    latent_frames = (frames - 1) // shape.temporal + 1
    return (math.ceil(latent_frames / pt) * math.ceil(height / shape.spatial / ph)
            * math.ceil(width / shape.spatial / pw))


TRANSFORMERS = ("transformer", "transformer_2")
"""Components that denoise (Wan 2.2 A14B has two experts; the pipeline runs one per step)."""
DECODERS = ("vae",)
"""The component that decodes the latents into frames (LTX-2's ``audio_vae`` decodes a far smaller tensor)."""


def estimate_peak_bytes(family: str, checkpoint: Path, width: int, height: int, frames: int, dtype: str, *,
                        budget_bytes: int | None = None) -> MemoryEstimate:
    """The estimated peak GPU memory of generating ``frames`` frames of ``width`` x ``height`` with the
    checkpoint at ``checkpoint`` (of ``family``) in ``dtype``.

    Without ``budget_bytes``: the ``resident`` plan, ``fits`` True. With it: the first plan of :data:`PLANS`
    whose peak is within the budget, or ``group_offload`` with ``fits`` False when none is.

    Per plan: weights at the runtime dtype of the components on the GPU at once (see the module's table);
    the denoising's activations, ``tokens x width x dtype bytes x`` :data:`ACTIVATION_FACTOR` (``x 2`` where
    guidance's two passes run as one batch); the decode's, ``pixels in flight x`` :func:`vae_pixel_elements`
    ``x dtype bytes``, where a tiled decode holds one tile's pixels (never more than the frame's) and a
    causal VAE (Wan) a few frames; the text encoders' activations (a few hundred tokens) are left out.
    """
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
    if width < 1 or height < 1 or frames < 1:
        raise ValueError(f"a clip has a positive size, got {width}x{height}x{frames}")
    estimates = [_estimate(family, Path(checkpoint), width, height, frames, dtype, plan) for plan in PLANS]
    if budget_bytes is None:
        return estimates[0]
    for estimate in estimates:
        if estimate.peak_bytes <= budget_bytes:
            return estimate
    return _with(estimates[-1], fits=False)


def _with(estimate: MemoryEstimate, *, fits: bool) -> MemoryEstimate:
    return MemoryEstimate(estimate.weights_bytes, estimate.activations_bytes, estimate.peak_bytes, estimate.plan,
                          fits)


def plan_estimates(family: str, checkpoint: Path, width: int, height: int, frames: int,
                   dtype: str) -> dict[str, MemoryEstimate]:
    """Every plan's estimate (``fits`` True), for a table (``dreamreel models check``) or a test."""
    return {plan: _estimate(family, Path(checkpoint), width, height, frames, dtype, plan) for plan in PLANS}


def _estimate(family: str, checkpoint: Path, width: int, height: int, frames: int, dtype: str,
              plan: str) -> MemoryEstimate:
    facts, shape = _facts(family), _shape(family, checkpoint)
    size = DTYPE_BYTES[dtype]
    components = _components(checkpoint)
    denoise = (latent_tokens(family, checkpoint, width, height, frames) * shape.hidden * size * ACTIVATION_FACTOR
               * facts.cfg_batch)
    in_flight = frames if facts.decode_frames is None else min(frames, facts.decode_frames)
    tiled = plan in TILED_PLANS
    pixels = (min(width, facts.tile) * min(height, facts.tile)) if tiled else width * height
    decode = in_flight * pixels * shape.vae_elements * size
    if plan in ("resident", "vae_tiling"):
        weights = sum(part.parameters for part in components.values()) * size
        activations = max(denoise, decode)
    else:
        # One component at a time: its weights (all of them, or two leaf tensors) with its own activations.
        phases = []
        for name, part in components.items():
            held = part.parameters if plan == "model_offload" else 2 * part.largest
            work = denoise if name in TRANSFORMERS else decode if name in DECODERS else 0
            phases.append((held * size + work, held * size, work))
        if not phases:
            phases.append((max(denoise, decode), 0, max(denoise, decode)))
        _, weights, activations = max(phases)
    return MemoryEstimate(weights_bytes=weights, activations_bytes=activations,
                          peak_bytes=weights + activations + RUNTIME_OVERHEAD_BYTES, plan=plan, fits=True)


def gib(n_bytes: float) -> str:
    """``n_bytes`` in GiB for a message: one decimal, or two below 1 GiB."""
    value = n_bytes / GIB
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"
