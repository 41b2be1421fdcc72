"""Write a word-level Hugging Face tokenizer that counts tokens as perfkit's simulator does (whitespace words).

Other tools (GuideLLM, AIPerf, vLLM's ``bench serve``) load a tokenizer to build prompts and count tokens; no
model hub is reachable here, so they are pointed at this folder instead (``--processor`` / ``--tokenizer``).
Its vocabulary is 4,096 words ``w0`` ... (every other word reads as ``[UNK]``), so
a prompt of N tokens is N words for both the tool and the simulator.  The unknown word is not declared a
special token, so that a prompt of unknown words decodes to "[UNK] [UNK] ..." (as many words) rather than to
nothing.

    python tests/peers/make_tokenizer.py OUT_DIR      (needs the ``tokenizers`` and ``transformers`` packages)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    words = [f"w{i}" for i in range(4096)]
    vocab = {"[UNK]": 0, "[EOS]": 1}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "eos_token": "[EOS]",
                "model_max_length": 1_000_000,
                "chat_template": "{% for m in messages %}{{ m['content'] }} {% endfor %}",
            },
            indent=1,
        )
    )
    (out / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": len(vocab)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
