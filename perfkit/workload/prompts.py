"""Synthetic prompt text of a target token length.

No tokenizer can be downloaded here, so a prompt of "N tokens" is built from
N words drawn from a vocabulary of short, common, lower-case English words.
Each such word, with its leading space, is a single token in the BPE
vocabularies of the common open models (Llama, Mistral, Qwen, GPT-style), so
real servers report close to N prompt tokens plus their chat template; the
simulator counts exactly one token per whitespace-separated word.  perfkit
records both the target (``prompt_tokens_target``) and what the server
reported in ``usage`` (``prompt_tokens``), so the difference is visible.

Words are drawn at random per request, so two prompts share no long prefix
and a prefix cache cannot make them artificially cheap.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PromptFactory"]

_VOCAB = (
    "the of and to in is it you that he was for on are as with his they at be this have from "
    "or one had by word but not what all were we when your can said there use an each which she "
    "do how their if will up other about out many then them these so some her would make like "
    "him into time has look two more write go see number no way could people my than first water "
    "been call who oil its now find long down day did get come made may part over new sound take "
    "only little work know place year live me back give most very after thing our just name good "
    "sentence man think say great where help through much before line right too mean old any same "
    "tell boy follow came want show also around form three small set put end does another well "
    "large must big even such because turn here why ask went men read need land different home us "
    "move try kind hand picture again change off play spell air away animal house point page letter"
).split()


class PromptFactory:
    """Make prompts of a given word (≈ token) count, reproducibly.

    Parameters
    ----------
    seed : int or sequence of int
        Seed of the word draws (numpy's seed sequence).
    """

    vocab: tuple[str, ...] = tuple(_VOCAB)

    def __init__(self, seed: int | list[int] = 0) -> None:
        self._rng = np.random.default_rng(seed)

    def make(self, n_tokens: int) -> str:
        """A prompt of ``n_tokens`` words separated by single spaces."""
        if n_tokens <= 0:
            return ""
        idx = self._rng.integers(0, len(self.vocab), size=n_tokens)
        words = self.vocab
        return " ".join([words[i] for i in idx.tolist()])
