"""Token-length distributions for prompts and outputs.

A length is written on the command line as ``N`` (fixed) or ``KIND:A,B``:

==============================  =============================================
``256``                         always 256 tokens
``uniform:128,512``             integers uniform on [128, 512]
``normal:256,32``               normal, mean 256, standard deviation 32
``lognormal:256,0.5``           lognormal with median 256 and log-sd 0.5
==============================  =============================================

Every draw is rounded and clipped to ``[lo, hi]`` (default ``[1, 131072]``);
``KIND:A,B,LO,HI`` sets the clip bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfkit.errors import ConfigError

__all__ = ["MAX_TOKENS", "LengthDist", "parse_length"]

_KINDS = ("fixed", "uniform", "normal", "lognormal")
MAX_TOKENS = 131072
"""The longest prompt or answer perfkit draws or makes, tokens."""
_MAX_TOKENS = MAX_TOKENS


@dataclass(frozen=True, slots=True)
class LengthDist:
    """A distribution of token counts.

    Parameters
    ----------
    kind : {"fixed", "uniform", "normal", "lognormal"}
    a, b : float
        fixed: ``a`` tokens; uniform: bounds; normal: mean and sd (tokens);
        lognormal: median (tokens) and sd of the log.
    lo, hi : int
        Clip bounds applied after drawing, in tokens.
    """

    kind: str
    a: float
    b: float = 0.0
    lo: int = 1
    hi: int = _MAX_TOKENS

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ConfigError(f"length kind {self.kind!r} is not one of {', '.join(_KINDS)}")
        if self.lo < 0 or self.hi < self.lo:
            raise ConfigError(f"length clip bounds [{self.lo}, {self.hi}] are empty or negative")
        if self.kind == "fixed" and self.a < 0:
            raise ConfigError(f"a fixed length must be >= 0, got {self.a}")
        if self.kind == "uniform" and self.b < self.a:
            raise ConfigError(f"uniform:{self.a},{self.b}: the upper bound is below the lower")
        if self.kind in ("normal", "lognormal") and (self.b < 0 or self.a <= 0):
            raise ConfigError(f"{self.kind}:{self.a},{self.b}: centre must be > 0 and spread >= 0")

    @classmethod
    def fixed(cls, n: int) -> LengthDist:
        """A constant length of ``n`` tokens."""
        return cls("fixed", float(n), lo=min(1, n), hi=max(n, 1))

    def sample(self, rng: np.random.Generator, size: int = 1) -> np.ndarray:
        """Draw ``size`` lengths (int64 tokens)."""
        if self.kind == "fixed":  # once per request on the event loop: no float array, no clip
            return np.full(size, min(max(int(np.rint(self.a)), self.lo), self.hi), dtype=np.int64)
        if self.kind == "uniform":
            x = rng.integers(int(self.a), int(self.b) + 1, size=size).astype(float)
        elif self.kind == "normal":
            x = rng.normal(self.a, self.b, size=size)
        else:
            x = rng.lognormal(np.log(self.a), self.b, size=size)
        return np.clip(np.rint(x), self.lo, self.hi).astype(np.int64)

    @property
    def mean_hint(self) -> float:
        """Approximate mean in tokens (before clipping), for sizing and display."""
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        if self.kind == "lognormal":
            return float(self.a * np.exp(self.b**2 / 2))
        return self.a

    def __str__(self) -> str:
        if self.kind == "fixed":
            return str(int(self.a))
        return f"{self.kind}:{self.a:g},{self.b:g}"


def parse_length(text: str | int | LengthDist, *, what: str = "length") -> LengthDist:
    """Parse ``"256"``, ``"uniform:128,512"``, ... into a :class:`LengthDist`.

    Raises
    ------
    ConfigError
        With the text, what was wrong, and the accepted forms.
    """
    if isinstance(text, LengthDist):
        return text
    if isinstance(text, int):
        return LengthDist.fixed(text)
    s = str(text).strip()
    forms = "N, uniform:LO,HI, normal:MEAN,SD, lognormal:MEDIAN,SIGMA (optionally ,CLIP_LO,CLIP_HI)"
    kind, _, rest = s.partition(":")
    if rest and kind.strip().lower() not in _KINDS:
        raise ConfigError(f"{what} {s!r}: kind {kind!r} is not one of {', '.join(_KINDS)}; use {forms}")
    try:
        if ":" not in s:
            return LengthDist.fixed(int(s))
        nums = [float(v) for v in rest.split(",")]
    except ValueError:
        raise ConfigError(f"{what} {s!r} is not a length; use {forms}") from None
    if len(nums) not in (2, 4):
        raise ConfigError(f"{what} {s!r} needs 2 or 4 numbers; use {forms}")
    lo, hi = (int(nums[2]), int(nums[3])) if len(nums) == 4 else (1, _MAX_TOKENS)
    return LengthDist(kind.strip().lower(), nums[0], nums[1], lo, hi)
