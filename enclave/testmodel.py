"""Build a small Llama-architecture model locally: random weights, a tokenizer trained on a few sentences.

No model hub is reachable from tests, the demo or the benchmarks, so they build
their model here and then treat it exactly like a real one (seal it, serve it).

    build_test_model(out_dir)                 # "tiny": ~1 MB, loads in vLLM on a laptop CPU
    build_test_model(out_dir, size="1gb")     # ≥ 1 GB of float32 weights, for bench/unseal.py

vLLM's CPU attention needs head_dim ≥ 64; both sizes use 64.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

SENTENCES = (
    "Confidential computing keeps model weights secret.",
    "The key broker releases keys after attestation.",
    "Veil runs vLLM inside a confidential VM.",
    "Hello world, this is a tiny model.",
    "Attested TLS binds the server key to the quote.",
)
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")
VOCAB_SIZE = 512


@dataclass(frozen=True, slots=True)
class Shape:
    hidden: int
    intermediate: int
    layers: int
    heads: int


SHAPES = {
    "tiny": Shape(hidden=128, intermediate=256, layers=2, heads=2),
    # 6 layers of (4·2048² + 3·2048·5632) float32 parameters ≈ 1.2 GB, head_dim 64.
    "1gb": Shape(hidden=2048, intermediate=5632, layers=6, heads=32),
}


def build_tokenizer(out: Path) -> int:
    """Train a byte-level BPE tokenizer on SENTENCES; write tokenizer.json and its config."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(SENTENCES) * 50, trainer)
    tok.save(str(out / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
              "unk_token": "<unk>", "model_max_length": 512}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return tok.get_vocab_size()


def build_test_model(out_dir: str | os.PathLike[str], *, size: str = "tiny", seed: int = 0) -> Path:
    """Write a complete Hugging Face model directory (config, safetensors weights, tokenizer)."""
    try:
        shape = SHAPES[size]
    except KeyError:
        raise ValueError(f"unknown test model size {size!r}; expected one of {sorted(SHAPES)}") from None
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = build_tokenizer(out)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=shape.hidden, intermediate_size=shape.intermediate,
                      num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                      num_key_value_heads=shape.heads, head_dim=shape.hidden // shape.heads,
                      max_position_embeddings=512, bos_token_id=1, eos_token_id=2, torch_dtype="float32",
                      tie_word_embeddings=False)
    torch.manual_seed(seed)
    with torch.no_grad():
        model = LlamaForCausalLM(cfg)
        model.save_pretrained(out, safe_serialization=True, max_shard_size="2GB")
    return out


if __name__ == "__main__":
    import sys

    print(build_test_model(sys.argv[1], size=sys.argv[2] if len(sys.argv) > 2 else "tiny"))
