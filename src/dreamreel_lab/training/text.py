"""The embedded model's tokenizer: a SentencePiece vocabulary trained on the world's captions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dreamreel.engine.tokenizer import build_tokenizer, train_sentencepiece
from dreamreel_lab.training.architecture import TEXT_MAX_TOKENS
from dreamreel_lab.world.captions import caption
from dreamreel_lab.world.spec import sample_scene

TOKENIZER_VOCAB = 512
CORPUS_SIZE = 20000
CORPUS_SEED = 11


def caption_corpus(size: int = CORPUS_SIZE) -> list[str]:
    """Captions of random world scenes (all combinations: the vocabulary is words, not scenes)."""
    rng = np.random.default_rng(CORPUS_SEED)
    return [caption(sample_scene(rng), rng) for _ in range(size)]


def load_or_build_tokenizer(work_dir: Path):
    path = work_dir / "spiece.model"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(train_sentencepiece(caption_corpus(), TOKENIZER_VOCAB, seed=CORPUS_SEED,
                                             exact_size=False))
    return build_tokenizer(path.read_bytes(), TEXT_MAX_TOKENS)
