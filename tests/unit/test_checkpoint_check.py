"""``engine/checkpoint.py`` in process: what a pull selects from a hub listing, and the checks a sharded or
incomplete checkpoint needs (the CLI's own cases are in tests/acceptance/test_models_cli.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from huggingface_hub.utils import filter_repo_objects
from safetensors.numpy import load_file, save_file

from dreamreel.engine.checkpoint import IGNORE_PATTERNS, allow_patterns, check, read_safetensors_header

WAN_A14B_LISTING = [  # the layout of a Wan 2.2 A14B diffusers repository: two sharded experts, a sharded umT5
    ".gitattributes", "README.md", "assets/logo.png", "examples/i2v_input.JPG", "model_index.json",
    "scheduler/scheduler_config.json", "text_encoder/config.json", "text_encoder/model.safetensors.index.json",
    *(f"text_encoder/model-0000{i}-of-00005.safetensors" for i in range(1, 6)),
    "tokenizer/special_tokens_map.json", "tokenizer/spiece.model", "tokenizer/tokenizer.json",
    "tokenizer/tokenizer_config.json",
    *(f"{t}/{f}" for t in ("transformer", "transformer_2") for f in (
        "config.json", "diffusion_pytorch_model.safetensors.index.json",
        *(f"diffusion_pytorch_model-0000{i}-of-00006.safetensors" for i in range(1, 7)))),
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "Wan2.1_VAE.pth", "models_t5_umt5-xxl-enc-bf16.pth",
    "high_noise_model/diffusion_pytorch_model-00001-of-00006.safetensors",
]
LTX_LISTING = [  # LTX-Video's main repository: diffusers folders beside root-level original checkpoints
    "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
    "text_encoder/model-00001-of-00004.safetensors", "text_encoder/model.safetensors.index.json",
    "tokenizer/added_tokens.json", "tokenizer/special_tokens_map.json", "tokenizer/spiece.model",
    "tokenizer/tokenizer_config.json", "transformer/config.json", "transformer/diffusion_pytorch_model.safetensors",
    "transformer/diffusion_pytorch_model.fp16.safetensors", "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.bin", "ltx-video-2b-v0.9.5.safetensors",
    "ltxv-13b-0.9.7-dev-fp8.safetensors",
    "ltxv-spatial-upscaler-0.9.7.safetensors", "ltxv-13b-0.9.7-dev.gguf", "media/ltx-video_example_00001.gif",
]


def selected(family: str, listing: list[str]) -> set[str]:
    """What ``snapshot_download`` fetches of ``listing`` with the pull's patterns (the client's own filter)."""
    return set(filter_repo_objects(listing, allow_patterns=allow_patterns(family),
                                   ignore_patterns=list(IGNORE_PATTERNS)))


def test_pull_patterns_take_the_diffusers_files_the_family_loads_and_nothing_else() -> None:
    wan = selected("wan22-t2v", WAN_A14B_LISTING)
    assert wan == {name for name in WAN_A14B_LISTING if name.split("/")[0] in (
        "model_index.json", "scheduler", "text_encoder", "tokenizer", "transformer", "transformer_2", "vae")}
    ltx = selected("ltx-condition", LTX_LISTING)
    assert ltx == {
        "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
        "text_encoder/model-00001-of-00004.safetensors", "text_encoder/model.safetensors.index.json",
        "tokenizer/added_tokens.json", "tokenizer/special_tokens_map.json", "tokenizer/spiece.model",
        "tokenizer/tokenizer_config.json", "transformer/config.json", "transformer/diffusion_pytorch_model.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "ltxv-spatial-upscaler-0.9.7.safetensors",
    }


def shard(folder: Path) -> list[Path]:
    """Split ``folder``'s diffusers weights into two shards with an index, as large checkpoints are stored."""
    single = folder / "diffusion_pytorch_model.safetensors"
    tensors = load_file(single)
    names = sorted(tensors)
    shards = [folder / f"diffusion_pytorch_model-0000{i}-of-00002.safetensors" for i in (1, 2)]
    halves = (names[: len(names) // 2], names[len(names) // 2:])
    for path, part in zip(shards, halves, strict=True):
        save_file({name: tensors[name] for name in part}, path)
    weight_map = {name: path.name for path, part in zip(shards, halves, strict=True) for name in part}
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    single.unlink()
    return shards


@pytest.fixture
def sharded(tiny_model_dir: Path, tmp_path: Path) -> tuple[Path, list[Path]]:
    copy = tmp_path / "sharded"
    shutil.copytree(tiny_model_dir, copy)
    return copy, shard(copy / "transformer")


def test_sharded_weights_are_counted_and_a_missing_or_cut_shard_is_named(tiny_model_dir: Path,
                                                                          sharded: tuple[Path, list[Path]]) -> None:
    whole = check(tiny_model_dir)
    assert whole.ok, whole.problems
    path, shards = sharded
    report = check(path)
    assert report.ok, report.problems
    transformer = next(c for c in report.components if c.name == "transformer")
    assert transformer.files == tuple(f"transformer/{p.name}" for p in shards)
    assert report.params == whole.params and transformer.dtype == "float32"

    shards[1].unlink()
    data = shards[0].read_bytes()
    shards[0].write_bytes(data[: len(data) - 100])  # a download cut short
    problems = check(path).problems
    assert problems == (
        "transformer: 1 of 2 shards named by transformer/diffusion_pytorch_model.safetensors.index.json are "
        f"missing: {shards[1].name}",
        f"transformer: transformer/{shards[0].name} is not a readable safetensors file (truncated: the header "
        f"describes {len(data)} bytes, the file has {len(data) - 100})",
    )


def test_a_component_the_pipeline_needs_left_out_of_model_index_is_named(tiny_model_dir: Path,
                                                                         tmp_path: Path) -> None:
    copy = tmp_path / "no-vae"
    shutil.copytree(tiny_model_dir, copy)
    index = json.loads((copy / "model_index.json").read_text())
    del index["vae"]
    (copy / "model_index.json").write_text(json.dumps(index))
    report = check(copy)
    assert report.problems == (
        "vae: model_index.json leaves it out, and the ltx-condition family's LTXConditionPipeline needs it",)


def test_the_header_reader_refuses_what_is_not_safetensors(tmp_path: Path) -> None:
    bogus = tmp_path / "x.safetensors"
    bogus.write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match="does not fit the file"):
        read_safetensors_header(bogus)


@pytest.fixture(scope="module")
def real_layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random checkpoints in the real layouts of LTX-2 (components from diffusers' ``ltx2`` package) and
    Wan 2.2 A14B (two experts)."""
    from dreamreel.engine.tiny_ltx2 import build_tiny_ltx2
    from dreamreel.engine.tiny_real import build_from_real_config

    root = tmp_path_factory.mktemp("layouts")
    return {"ltx2": build_tiny_ltx2(root / "ltx2", seed=0),
            "wan22-t2v": build_from_real_config("wan2.2-t2v-a14b", root / "wan22-t2v")}


@pytest.mark.parametrize("family", ["ltx2", "wan22-t2v"])
def test_what_a_pull_selects_of_a_real_layout_is_a_checkpoint_that_passes(family: str, real_layouts: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    source = real_layouts[family]
    listing = [p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()]
    for name in selected(family, listing):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, tmp_path / name)
    report = check(tmp_path)
    assert report.family == family and report.ok, report.problems
    assert {c.name for c in report.components if c.kind == "model"} >= {"transformer", "vae", "text_encoder"}
    assert len(report.memory) == 8


def test_a_two_expert_family_needs_its_second_expert(real_layouts: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "one-expert"
    shutil.copytree(real_layouts["wan22-t2v"], copy)
    index = json.loads((copy / "model_index.json").read_text())
    index["transformer_2"] = [None, None]
    (copy / "model_index.json").write_text(json.dumps(index))
    assert check(copy).problems == (
        "transformer_2: model_index.json leaves it out, and the wan22-t2v family's WanPipeline needs it",)
