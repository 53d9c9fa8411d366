"""GPU memory estimates (engine/memory.py), the plans a budget picks, and a tiled decode on the tiny model.

Parameter counts are checked against the tiny models' loaded modules; the plan order and budgets against
header-only checkpoints at the real models' scale (the estimate reads nothing but headers and configs, so a
file with a safetensors header and no data is a 14B checkpoint to it).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from dreamreel.core.failures import FailureCode
from dreamreel.engine.backends.ltx import LTXConditionBackend
from dreamreel.engine.backends.wan import WanVACEBackend
from dreamreel.engine.memory import (
    GIB,
    PLANS,
    checkpoint_parameters,
    estimate_peak_bytes,
    native_grid,
    plan_estimates,
)
from dreamreel.engine.plan import Plan
from dreamreel.worker.faults import classify


@pytest.fixture(scope="module")
def ltx(tiny_model_dir: Path) -> LTXConditionBackend:
    return LTXConditionBackend(tiny_model_dir)


def header_only(folder: Path, tensors: dict[str, list[int]], name: str = "model.safetensors",
                dtype: str = "BF16") -> None:
    """A safetensors header naming ``tensors`` (name -> shape), with no data after it."""
    folder.mkdir(parents=True, exist_ok=True)
    header = json.dumps({k: {"dtype": dtype, "shape": shape, "data_offsets": [0, 0]}
                         for k, shape in tensors.items()}).encode()
    (folder / name).write_bytes(struct.pack("<Q", len(header)) + header)


@pytest.fixture(scope="module")
def a14b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wan 2.2 T2V-A14B's components at their published scale: two 14.3B experts (40 blocks of width 5120),
    the 5.7B umT5 encoder (its 256,384 x 4096 embedding the largest tensor), the 127M VAE."""
    root = tmp_path_factory.mktemp("a14b")
    block = {f"blocks.{i}.ffn.{j}": [13824, 5120] for i in range(40) for j in (0, 1)} | {
        f"blocks.{i}.attn": [4 * 5120, 5120] for i in range(40)} | {
        f"blocks.{i}.cross": [4 * 5120, 5120] for i in range(40)}
    for expert in ("transformer", "transformer_2"):
        header_only(root / expert, block)
        (root / expert / "config.json").write_text(json.dumps(
            {"num_attention_heads": 40, "attention_head_dim": 128, "patch_size": [1, 2, 2]}))
    header_only(root / "text_encoder", {"embed": [256384, 4096]} | {f"layer.{i}": [10240, 4096 * 3]
                                                                     for i in range(24)})
    header_only(root / "vae", {"decoder": [127_000_000]})
    (root / "vae" / "config.json").write_text(json.dumps({"base_dim": 96, "scale_factor_spatial": 8,
                                                          "scale_factor_temporal": 4}))
    return root


def stored_elements(module: torch.nn.Module) -> int:
    """Elements of a module's state dict as a checkpoint stores it: tied tensors once."""
    return sum(t.numel() for t in {t.data_ptr(): t for t in module.state_dict().values()}.values())


def test_parameter_counts_are_the_loaded_modules(tiny_model_dir: Path, ltx: LTXConditionBackend) -> None:
    counts = checkpoint_parameters(tiny_model_dir)
    modules = {name: c for name, c in ltx.pipe.components.items() if isinstance(c, torch.nn.Module)}
    assert set(counts) == set(modules) == {"text_encoder", "transformer", "vae"}
    for name, module in modules.items():
        assert counts[name] == (stored_elements(module), "float32"), name
    assert counts["transformer"][0] == sum(p.numel() for p in ltx.pipe.transformer.parameters())


def test_a_sharded_component_counts_its_shards_and_a_variant_is_not_counted_twice(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    folder = tmp_path / "transformer"
    folder.mkdir()
    save_file({"a": np.zeros((3, 4), np.float32)}, str(folder / "model-00001-of-00002.safetensors"))
    save_file({"b": np.zeros((5,), np.float32)}, str(folder / "model-00002-of-00002.safetensors"))
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    vae = tmp_path / "vae"
    vae.mkdir()
    save_file({"w": np.zeros((7,), np.float32)}, str(vae / "diffusion_pytorch_model.safetensors"))
    header_only(vae, {"w": [7]}, "diffusion_pytorch_model.fp16.safetensors", dtype="F16")
    assert checkpoint_parameters(tmp_path) == {"transformer": (17, "float32"), "vae": (7, "float32")}


def test_the_torch_free_grid_is_the_one_the_loaded_backends_report(
    tiny_model_dir: Path, tiny_wan_model_dir: Path, ltx: LTXConditionBackend,
) -> None:
    assert native_grid("ltx-condition", tiny_model_dir) == ltx.native_grid()
    assert native_grid("wan-vace", tiny_wan_model_dir) == WanVACEBackend(tiny_wan_model_dir).native_grid()


@pytest.mark.parametrize("family", ["ltx-condition", "wan-vace"])
def test_the_estimate_grows_with_the_clip(family: str, tiny_model_dir: Path, tiny_wan_model_dir: Path) -> None:
    checkpoint = tiny_model_dir if family == "ltx-condition" else tiny_wan_model_dir
    sizes = [(64, 64, 9), (128, 64, 9), (128, 128, 9), (128, 128, 33), (640, 576, 33), (640, 576, 65)]
    for plan in PLANS:
        peaks = [plan_estimates(family, checkpoint, *size, "float32")[plan].peak_bytes for size in sizes]
        assert peaks == sorted(peaks) and peaks[-1] > peaks[0], (plan, peaks)
    assert (estimate_peak_bytes(family, checkpoint, 640, 576, 65, "float32").peak_bytes
            > estimate_peak_bytes(family, checkpoint, 640, 576, 65, "bfloat16").peak_bytes)


def test_plans_save_memory_in_order_and_a_budget_picks_the_first_that_fits(a14b: Path) -> None:
    estimates = plan_estimates("wan22-t2v", a14b, 1280, 720, 81, "bfloat16")
    peaks = [estimates[plan].peak_bytes for plan in PLANS]
    assert peaks[0] >= peaks[1] > peaks[2] > peaks[3], peaks
    expert = 40 * (2 * 13824 + 2 * 4 * 5120) * 5120 * 2
    assert estimates["resident"].weights_bytes == 2 * expert + (256384 + 24 * 10240 * 3) * 4096 * 2 + 127_000_000 * 2
    assert estimates["model_offload"].weights_bytes == expert  # one expert at a time, the larger component
    assert estimates["group_offload"].weights_bytes < GIB
    assert 75 * GIB < peaks[0] < 100 * GIB and 40 * GIB < peaks[2] < 60 * GIB  # Wan 2.2 README: "at least 80GB"

    unbudgeted = estimate_peak_bytes("wan22-t2v", a14b, 1280, 720, 81, "bfloat16")
    assert (unbudgeted.plan, unbudgeted.fits) == ("resident", True)
    for index, plan in enumerate(PLANS):
        if index and peaks[index] == peaks[index - 1]:
            continue  # a plan that saves nothing at this size is never the first to fit
        chosen = estimate_peak_bytes("wan22-t2v", a14b, 1280, 720, 81, "bfloat16", budget_bytes=peaks[index])
        assert (chosen.plan, chosen.fits, chosen.peak_bytes) == (plan, True, peaks[index])
    smaller = estimate_peak_bytes("wan22-t2v", a14b, 832, 480, 81, "bfloat16", budget_bytes=peaks[2])
    assert smaller.plan == "model_offload" and smaller.peak_bytes < peaks[2]


def test_a_budget_nothing_fits_says_so(a14b: Path, tiny_model_dir: Path) -> None:
    for family, checkpoint in (("wan22-t2v", a14b), ("ltx-condition", tiny_model_dir)):
        tiny = estimate_peak_bytes(family, checkpoint, 1280, 720, 81, "bfloat16", budget_bytes=2**20)
        assert (tiny.plan, tiny.fits) == ("group_offload", False)
        assert tiny.peak_bytes > 2**20
    with pytest.raises(ValueError, match="no memory facts for model family 'sora'"):
        estimate_peak_bytes("sora", tiny_model_dir, 64, 64, 9, "float32")


def _plan(width: int, height: int, frames: int) -> Plan:
    return Plan(prompt="a red ball rolls across a table", seed=3, native_width=width, native_height=height,
                native_frames=frames, native_fps=8, output_width=width, output_height=height, output_frames=frames,
                output_fps=8, num_inference_steps=1, guidance_scale=1.0)


def test_a_budget_that_needs_vae_tiling_decodes_in_tiles_on_the_tiny_model(
    tiny_model_dir: Path, ltx: LTXConditionBackend,
) -> None:
    """576 px is wider than the LTX VAE's 512 px tile: a tiled decode blends two tiles over columns 448..511
    (tile stride 448) and leaves every other pixel as the whole-frame decode makes it."""
    wide = plan_estimates("ltx-condition", tiny_model_dir, 576, 64, 9, "float32")
    assert wide["resident"].peak_bytes > wide["vae_tiling"].peak_bytes  # the decode peaks, and tiling shrinks it
    budget = (wide["resident"].peak_bytes + wide["vae_tiling"].peak_bytes) / 2 / GIB
    budgeted = LTXConditionBackend(tiny_model_dir, memory_budget_gb=budget)
    plan = _plan(576, 64, 9)
    whole = ltx.generate(plan, lambda *_: None, lambda: False)
    tiled = budgeted.generate(plan, lambda *_: None, lambda: False)
    assert budgeted.pipe.vae.use_tiling and not ltx.pipe.vae.use_tiling
    assert tiled.shape == whole.shape == (9, 64, 576, 3) and tiled.dtype == np.uint8
    blend = np.s_[:, :, 448:512]
    assert not np.array_equal(tiled[blend], whole[blend])
    assert np.array_equal(np.delete(tiled, range(448, 512), axis=2), np.delete(whole, range(448, 512), axis=2))

    small = budgeted.generate(_plan(64, 64, 1), lambda *_: None, lambda: False)  # fits resident: untiled again
    assert small.shape == (1, 64, 64, 3) and not budgeted.pipe.vae.use_tiling


@pytest.mark.parametrize("error", [torch.OutOfMemoryError, torch.cuda.OutOfMemoryError])
def test_a_gpu_out_of_memory_fails_the_job_naming_the_clip_and_the_budget(error: type[Exception]) -> None:
    context = "ray-2 at 1080p 16:9 9 s, made at 1216x704 x 217 frames; its memory budget is 24 GiB"
    code, reason = classify(error("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total "
                                  "capacity of 79.10 GiB\nof which 1.2 GiB is free"), context=context)
    assert code is FailureCode.OUT_OF_MEMORY
    assert reason == (f"the job ran out of memory on its worker ({context}): CUDA out of memory. Tried to "
                      "allocate 20.00 GiB. GPU 0 has a total capacity of 79.10 GiB")
