"""Build a tiny random LoRA for a tiny LTX-Video checkpoint, offline.

Why this exists: the per-request adapters (``engine/lora.py``) are exercised end to end on the tiny model,
so a test needs an adapter file in the very format operators download (diffusers' ``save_lora_weights``: a
``.safetensors`` of peft ``lora_A``/``lora_B`` tensors keyed ``transformer.…``, with the peft config in its
header). peft starts ``lora_B`` at zero, which makes an adapter a no-op; here both halves are drawn from a
seeded RNG, so applying it visibly changes the output and "unloaded" can be told apart from "never had an
effect".
"""

from __future__ import annotations

from pathlib import Path

TINY_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
"""The transformer's attention projections (self- and cross-attention): where published LTX LoRAs adapt it."""

TINY_LORA_FILE = "pytorch_lora_weights.safetensors"
"""diffusers' default LoRA file name (what ``load_lora_weights`` looks for in a directory)."""


def build_tiny_lora(model_dir: str | Path, out_path: str | Path, *, seed: int = 0, rank: int = 4,
                    strength: float = 0.5) -> Path:
    """Write a rank-``rank`` LoRA for ``model_dir``'s transformer to ``out_path`` (a ``.safetensors`` file) and
    return that path.

    ``A`` is drawn with unit gain per input and ``B`` scaled by ``strength``, so at scale 1 each adapted
    projection moves by about ``strength`` times a unit-variance projection of its input: large enough to
    change the tiny model's frames, small enough to keep them finite. Same ``model_dir`` and ``seed``, same
    file. The caller's global RNG state is left untouched.
    """
    import torch
    from diffusers import LTXConditionPipeline, LTXVideoTransformer3DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    transformer = LTXVideoTransformer3DModel.from_pretrained(Path(model_dir), subfolder="transformer")
    config = LoraConfig(r=rank, lora_alpha=rank, target_modules=list(TINY_LORA_TARGETS), init_lora_weights=False)
    transformer.add_adapter(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in sorted(transformer.named_parameters()):
            if "lora_A" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) / parameter.shape[1] ** 0.5)
            elif "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * strength / rank ** 0.5)
    layers = get_peft_model_state_dict(transformer)
    LTXConditionPipeline.save_lora_weights(
        out.parent, transformer_lora_layers=layers, weight_name=out.name,
        transformer_lora_adapter_metadata=config.to_dict(),
    )
    return out
