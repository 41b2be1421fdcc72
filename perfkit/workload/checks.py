"""Response checks: does an answer say what it should?

A probe is a prompt with an expected answer.  Its check is one of

==================  ============================================================
``exact``           the answer, stripped of surrounding whitespace, equals it
``contains``        the answer contains it (case-insensitive)
``regex``           the pattern matches somewhere in the answer
``json``            the answer parses as JSON (``expected`` unused)
``json_schema``     the answer parses as JSON and validates against the schema
==================  ============================================================

A failed check is a *semantic* error: the request succeeded as HTTP and its
latency counts, but its answer was wrong, so it does not meet its SLO.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from perfkit.errors import ConfigError

__all__ = ["CHECK_KINDS", "Check", "Probe"]

CHECK_KINDS = ("exact", "contains", "regex", "json", "json_schema")


@dataclass(frozen=True)
class Check:
    """One expectation about an answer (see the module docstring)."""

    kind: str
    expected: Any = None

    def __post_init__(self) -> None:
        if self.kind not in CHECK_KINDS:
            raise ConfigError(f"check {self.kind!r} is not one of {', '.join(CHECK_KINDS)}")
        if self.kind in ("exact", "contains", "regex") and not isinstance(self.expected, str):
            raise ConfigError(f"a {self.kind} check needs a string to expect, got {self.expected!r}")
        if self.kind == "regex":
            try:
                re.compile(self.expected)
            except re.error as exc:
                raise ConfigError(f"regex {self.expected!r} does not compile: {exc}") from None
        if self.kind == "json_schema":
            import jsonschema

            try:
                jsonschema.validators.validator_for(self.expected).check_schema(self.expected)
            except jsonschema.SchemaError as exc:
                raise ConfigError(f"the JSON schema is invalid: {exc.message}") from None

    def evaluate(self, answer: str) -> tuple[bool, str | None]:
        """(passed, why not)."""
        text = answer.strip()
        if self.kind == "exact":
            return (
                text == self.expected.strip(),
                None if text == self.expected.strip() else f"expected exactly {self.expected!r}, got {text[:80]!r}",
            )
        if self.kind == "contains":
            ok = self.expected.lower() in text.lower()
            return ok, None if ok else f"answer does not contain {self.expected!r}: {text[:80]!r}"
        if self.kind == "regex":
            ok = re.search(self.expected, text) is not None
            return ok, None if ok else f"answer does not match /{self.expected}/: {text[:80]!r}"
        try:
            value = json.loads(text)
        except ValueError as exc:
            return False, f"answer is not JSON ({exc}): {text[:80]!r}"
        if self.kind == "json":
            return True, None
        import jsonschema

        err = jsonschema.exceptions.best_match(
            jsonschema.validators.validator_for(self.expected)(self.expected).iter_errors(value)
        )
        return (err is None, None if err is None else f"answer fails the schema: {err.message}")

    def oracle(self) -> str | None:
        """An answer that passes, for the simulator to give (None when none can be made up)."""
        if self.kind in ("exact", "contains"):
            return self.expected
        if self.kind == "json":
            return '{"ok": true}'
        return None


@dataclass(frozen=True)
class Probe:
    """A prompt with its check."""

    prompt: str
    check: Check

    @classmethod
    def from_dict(cls, d: Any) -> Probe:
        if not isinstance(d, dict) or "prompt" not in d or "check" not in d:
            raise ConfigError(f"a probe needs 'prompt' and 'check', got {d!r}")
        chk = d["check"]
        if not isinstance(chk, dict) or len(chk) != 1:
            raise ConfigError(f"a check is one of {{{', '.join(CHECK_KINDS)}: EXPECTED}}, got {chk!r}")
        kind, expected = next(iter(chk.items()))
        return cls(str(d["prompt"]), Check(str(kind), expected))
