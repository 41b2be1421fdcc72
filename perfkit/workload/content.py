"""What each request says: user classes, conversations, datasets, imperfect input, SLOs.

A :class:`UserClass` describes one kind of user: how long its prompts and
answers are (distributions, or a dataset), how many turns its sessions have
and how long it thinks between them, a shared prefix (a system prompt, for
prefix-cache studies), an optional kind of imperfect input, how often it gives
up waiting, and its SLO.  A run mixes classes by weight.

A :class:`Conversation` is the growing history of one session: each turn's
request carries every earlier user message and answer, so prompt tokens grow
turn by turn, as in a real chat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perfkit.errors import ConfigError
from perfkit.workload.checks import Probe
from perfkit.workload.lengths import MAX_TOKENS, LengthDist, parse_length
from perfkit.workload.prompts import PromptFactory

__all__ = ["IMPERFECT_KINDS", "Conversation", "DatasetEntry", "Slo", "UserClass", "Workload"]

IMPERFECT_KINDS = ("typos", "truncate", "empty", "long")


@dataclass(frozen=True)
class Slo:
    """Per-request service-level objectives, ms; a request attains the SLO when it meets all that are set.

    ``tpot_ms`` bounds the request's mean time per output token after the first
    (``tpot_ms`` column), which is how an ITL target applies to one request.
    """

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None

    def __post_init__(self) -> None:
        for name in ("ttft_ms", "tpot_ms", "e2e_ms"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ConfigError(f"slo {name} must be > 0 ms, got {v}")
        if self.ttft_ms is None and self.tpot_ms is None and self.e2e_ms is None:
            raise ConfigError("an slo needs at least one of ttft_ms, tpot_ms, e2e_ms")

    def met(self, ok: bool, ttft_ms: float | None, tpot_ms: float | None, e2e_ms: float | None) -> bool:
        if not ok:
            return False
        checks = ((self.ttft_ms, ttft_ms), (self.tpot_ms, tpot_ms), (self.e2e_ms, e2e_ms))
        return all(limit is None or (value is not None and value <= limit) for limit, value in checks)


@dataclass(frozen=True)
class DatasetEntry:
    """One conversation from a dataset: user messages and the answer lengths (tokens) that followed."""

    user_texts: tuple[str, ...]
    answer_tokens: tuple[int | None, ...]


@dataclass(frozen=True)
class UserClass:
    """One kind of user (see the module docstring).

    Parameters
    ----------
    name : str
    weight : float
        Relative share of sessions, > 0.
    prompt_tokens, output_tokens : LengthDist or str or int
        Lengths of each turn's new user message and of the answer (max_tokens), tokens.
    turns : int
        Turns per session.
    think_time_s : float
        Pause between a session's turns, s.
    shared_prefix_tokens : int
        A system prompt of this many tokens, the same for every request of the class.
    dataset : tuple of DatasetEntry, optional
        Take user messages (and answer lengths, where known) from these conversations.
    imperfect : {"typos", "truncate", "empty", "long"}, optional
    cancel_fraction : float
        Share of requests whose user gives up after ``cancel_after_s`` seconds.
    slo : Slo, optional
    probes : tuple of Probe, optional
        Ask these prompts (one per session, drawn at random) and check the answers.
    """

    name: str = "default"
    weight: float = 1.0
    prompt_tokens: LengthDist | str | int = 256
    output_tokens: LengthDist | str | int = 128
    turns: int = 1
    think_time_s: float = 0.0
    shared_prefix_tokens: int = 0
    dataset: tuple[DatasetEntry, ...] | None = field(default=None, repr=False)
    imperfect: str | None = None
    cancel_fraction: float = 0.0
    cancel_after_s: float = 1.0
    slo: Slo | None = None
    probes: tuple[Probe, ...] | None = field(default=None, repr=False)
    explicit: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"class {self.name!r}"
        object.__setattr__(self, "prompt_tokens", parse_length(self.prompt_tokens, what=f"{where} prompt_tokens"))
        object.__setattr__(self, "output_tokens", parse_length(self.output_tokens, what=f"{where} output_tokens"))
        if not self.weight > 0:
            raise ConfigError(f"{where}: weight must be > 0, got {self.weight}")
        if self.turns < 1:
            raise ConfigError(f"{where}: turns must be >= 1, got {self.turns}")
        if self.think_time_s < 0 or self.shared_prefix_tokens < 0:
            raise ConfigError(f"{where}: think_time_s and shared_prefix_tokens must be >= 0")
        if self.shared_prefix_tokens > MAX_TOKENS:  # the prefix is made once, whole: 10^9 words would be GBs
            raise ConfigError(
                f"{where}: shared_prefix_tokens {self.shared_prefix_tokens} is more than {MAX_TOKENS}, "
                f"the longest prompt perfkit makes"
            )
        if self.imperfect is not None and self.imperfect not in IMPERFECT_KINDS:
            raise ConfigError(f"{where}: imperfect {self.imperfect!r} is not one of {', '.join(IMPERFECT_KINDS)}")
        if not 0 <= self.cancel_fraction <= 1 or not self.cancel_after_s > 0:
            raise ConfigError(f"{where}: cancel_fraction must be in [0, 1] and cancel_after_s > 0")
        if self.dataset is not None and not self.dataset:
            raise ConfigError(f"{where}: the dataset holds no conversation")
        if self.probes is not None and not self.probes:
            raise ConfigError(f"{where}: probes is empty")


class Conversation:
    """The history of one session; renders as chat messages or as one completion prompt."""

    def __init__(self, system: str = "") -> None:
        self.system = system
        self.turns: list[tuple[str, str]] = []  # (role, text)

    def add(self, role: str, text: str) -> None:
        self.turns.append((role, text))

    def messages(self) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": r, "content": t} for r, t in self.turns]

    def prompt(self) -> str:
        return "\n".join(([self.system] if self.system else []) + [t for _, t in self.turns])


class Workload:
    """Draws classes and builds each turn's text, reproducibly.

    Parameters
    ----------
    classes : sequence of UserClass
    seed : int
    salt : int, optional
        Mixed into the seed of the prompt text only (lengths, classes and arrivals stay the seed's): runs
        with different salts send different words, so a server's prefix cache does not carry over between
        them.  None: the text is the seed's alone.
    """

    def __init__(self, classes: tuple[UserClass, ...], seed: int = 0, salt: int | None = None) -> None:
        if not classes:
            raise ConfigError("a workload needs at least one user class")
        names = [c.name for c in classes]
        if len(set(names)) != len(names):
            raise ConfigError(f"user class names must be unique, got {names}")
        self.classes = classes
        w = np.array([c.weight for c in classes], dtype=float)
        self._p = w / w.sum()

        def factory(s: int) -> PromptFactory:
            return PromptFactory(s if salt is None else [s, salt])

        self._prompts = factory(seed)
        self._prefix = {c.name: factory(seed + 7919 + i).make(c.shared_prefix_tokens) for i, c in enumerate(classes)}

    def pick(self, rng: np.random.Generator) -> UserClass:
        """A class drawn by weight."""
        if len(self.classes) == 1:
            return self.classes[0]
        return self.classes[int(rng.choice(len(self.classes), p=self._p))]

    def start(self, cls: UserClass, rng: np.random.Generator) -> tuple[Conversation, DatasetEntry | None]:
        """A new session of class ``cls``: its (empty) conversation and, with a dataset, its source."""
        entry = cls.dataset[int(rng.integers(len(cls.dataset)))] if cls.dataset else None
        return Conversation(self._prefix[cls.name]), entry

    def next_user_turn(
        self,
        cls: UserClass,
        rng: np.random.Generator,
        conv: Conversation,
        turn: int,
        entry: DatasetEntry | None,
        prompt_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> tuple[int, int, Probe | None]:
        """Append the next user message to ``conv``; return (its target tokens, max_tokens, its probe)."""
        assert isinstance(cls.prompt_tokens, LengthDist) and isinstance(cls.output_tokens, LengthDist)
        n_out = output_tokens if output_tokens is not None else int(cls.output_tokens.sample(rng)[0])
        if cls.probes:
            probe = cls.probes[int(rng.integers(len(cls.probes)))]
            conv.add("user", probe.prompt)
            return len(probe.prompt.split()), max(1, n_out), probe
        if entry is not None and turn < len(entry.user_texts):
            text = entry.user_texts[turn]
            known = entry.answer_tokens[turn] if turn < len(entry.answer_tokens) else None
            n_out = known if known and output_tokens is None else n_out
        else:
            n_in = prompt_tokens if prompt_tokens is not None else int(cls.prompt_tokens.sample(rng)[0])
            if cls.imperfect == "long":
                n_in = min(n_in * 8, cls.prompt_tokens.hi * 8)
            text = self._prompts.make(n_in)
        text = _spoil(text, cls.imperfect, rng)
        conv.add("user", text)
        return len(text.split()), max(1, n_out), None


def _spoil(text: str, kind: str | None, rng: np.random.Generator) -> str:
    """Make input imperfect the way users do."""
    if kind is None or kind == "long":
        return text
    if kind == "empty":
        return ""
    if kind == "truncate":
        cut = int(len(text) * rng.uniform(0.1, 0.9))
        return text[:cut]
    chars = list(text)  # typos: about one character in twenty swapped with its neighbour or dropped
    n = len(chars)
    for i in rng.choice(n, size=max(1, n // 20), replace=False) if n > 2 else []:
        if i + 1 < len(chars) and rng.random() < 0.5:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        elif chars[i] != " ":
            chars[i] = ""
    return "".join(chars)
