"""A tiny Llama model with random weights and a vocabulary made here, as a Hugging Face model directory.

    python tests/realserver/make_tiny_hf_model.py OUT_DIR

The same model as ``make_tiny_model.py`` (which writes GGUF for llama.cpp) in the layout vLLM, SGLang and TGI
load: ``config.json``, ``model.safetensors`` and a ``tokenizer.json`` built with the ``tokenizers`` library
(a unigram vocabulary of control tokens, the 256 byte tokens and the words of perfkit's prompt vocabulary, so
that perfkit's prompts are one token a word).  Two layers of width 128, two heads of 64 (the head size CPU
attention kernels take).  Nothing comes from a model hub; run it with an interpreter that has ``tokenizers``,
``safetensors`` and ``numpy`` (any vLLM install has them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from perfkit.workload.prompts import PromptFactory

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
N_CONTROL = 3  # <unk>, <s>, </s>
N_SPECIAL = N_CONTROL + 256  # ... and the byte tokens


def vocabulary() -> list[tuple[str, float]]:
    """The pieces and their unigram scores (log-probabilities), in token-id order."""
    pieces = [("<unk>", 0.0), ("<s>", 0.0), ("</s>", 0.0)]
    pieces += [(f"<0x{b:02X}>", 0.0) for b in range(256)]
    words = sorted(set(PromptFactory.vocab))
    tail = ["\u2581" + w for w in words] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["\u2581"]
    pieces += [(p, -float(i + 1)) for i, p in enumerate(tail)]
    return pieces


def tokenizer(pieces: list[tuple[str, float]]) -> Tokenizer:
    """A Llama-style (SentencePiece) tokenizer: spaces as ``\u2581``, a leading one, BOS first, byte fallback."""
    tok = Tokenizer(models.Unigram(pieces, unk_id=0, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    tok.add_special_tokens([AddedToken(p, special=True, normalized=False) for p, _ in pieces[:N_CONTROL]])
    return tok


def write(out: str, seed: int = 0) -> None:
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    pieces = vocabulary()
    n_vocab, n_embd, n_ff, n_head, n_layer = len(pieces), 128, 256, 2, 2
    rng = np.random.default_rng(seed)

    def w(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    lm_head = w(n_vocab, n_embd, scale=1.0)
    lm_head[:N_SPECIAL] = 0.0  # as in the GGUF model: control and byte tokens are rarely likely
    tensors = {
        "model.embed_tokens.weight": w(n_vocab, n_embd, scale=1.0),
        "model.norm.weight": np.ones(n_embd, dtype=np.float32),
        "lm_head.weight": lm_head,
    }
    for i in range(n_layer):
        p = f"model.layers.{i}."
        tensors[p + "input_layernorm.weight"] = np.ones(n_embd, dtype=np.float32)
        tensors[p + "post_attention_layernorm.weight"] = np.ones(n_embd, dtype=np.float32)
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            tensors[p + f"self_attn.{name}.weight"] = w(n_embd, n_embd)
        tensors[p + "mlp.gate_proj.weight"] = w(n_ff, n_embd)
        tensors[p + "mlp.up_proj.weight"] = w(n_ff, n_embd)
        tensors[p + "mlp.down_proj.weight"] = w(n_embd, n_ff)
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": n_embd,
        "intermediate_size": n_ff,
        "num_attention_heads": n_head,
        "num_key_value_heads": n_head,
        "num_hidden_layers": n_layer,
        "vocab_size": n_vocab,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "bos_token_id": 1,
        "eos_token_id": 2,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
    }
    (path / "config.json").write_text(json.dumps(config, indent=1))
    (path / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}))
    tokenizer(pieces).save(str(path / "tokenizer.json"))
    tok_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "model_max_length": 2048,
        "chat_template": CHAT_TEMPLATE,
    }
    (path / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=1))


if __name__ == "__main__":
    write(sys.argv[1])
