"""The project's own SentencePiece vocabularies, wrapped as the ``T5TokenizerFast`` LTX pipelines expect.

Both the tiny test model and the trained embedded model use this: a vocabulary trained offline,
at build time, on the captions the model will read.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import T5TokenizerFast


def train_sentencepiece(
    sentences: Iterable[str], vocab_size: int, *, seed: int, exact_size: bool = True
) -> bytes:
    """Train a unigram SentencePiece model on ``sentences``; return the serialized model.

    Ids follow T5's layout (``<pad>``=0, ``</s>``=1, ``<unk>``=2, no BOS), which ``T5TokenizerFast``
    assumes. ``nmt_nfkc_cf`` case-folds, so capitalised prompts map onto the lower-case vocabulary.
    A single thread, unshuffled input and a fixed RNG seed make the vocabulary reproducible.
    With ``exact_size=False`` the size is an upper bound (a small closed-world corpus has fewer pieces).
    """
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(sentences)),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=1.0,
        normalization_rule_name="nmt_nfkc_cf",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        num_threads=1,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        minloglevel=2,
        hard_vocab_limit=exact_size,
    )
    return model.getvalue()


def _precompiled_charsmap(model_proto: bytes) -> bytes | None:
    """The normaliser table of a serialized SentencePiece model (the fast tokenizer needs it)."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model_proto)
    return proto.normalizer_spec.precompiled_charsmap or None


def build_tokenizer(model_proto: bytes, max_length: int) -> T5TokenizerFast:
    """A ``T5TokenizerFast`` over the given SentencePiece model (vocabulary, scores and normaliser)."""
    import sentencepiece as spm
    from transformers import T5TokenizerFast

    sp = spm.SentencePieceProcessor(model_proto=model_proto)
    vocab = [(sp.id_to_piece(i), float(sp.get_score(i))) for i in range(sp.get_piece_size())]
    return T5TokenizerFast(
        vocab=vocab,
        extra_ids=0,
        _spm_precompiled_charsmap=_precompiled_charsmap(model_proto),
        model_max_length=max_length,
    )
