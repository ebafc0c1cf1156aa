"""The door visitors come through: what a prompt and its settings may be (context lengths, the
instance's limits) and how many requests a minute each visitor may send. A part the `Arena` holds,
given the visitor limits and the slots whose context lengths bound a prompt."""

from __future__ import annotations

import math

from playground.arena.settings import RateLimiter, VisitorLimits
from playground.arena.slot import Slot
from playground.measure.generation import GenerationParams, check_generation
from playground.measure.specs import SpecError


class RateLimited(SpecError):
    """A visitor sent more requests than the instance allows per minute; the message says when to retry."""


class Door:
    """Checks a request before anything is sent, and counts each visitor's requests."""

    def __init__(self, limits: VisitorLimits, slots: dict[str, Slot]):
        self.limits = limits
        self.slots = slots
        self._rate = RateLimiter(limits.requests_per_minute)

    def problems(self, prompt: str, params: GenerationParams, mode: str = "fair") -> list[str]:
        """What is wrong with a prompt and its settings: both slots' context lengths, visitor limits."""
        lens = [s.spec.max_model_len for s in self.slots.values() if s.spec.max_model_len]
        return check_generation(
            prompt,
            params,
            max_model_len=min(lens, default=None),
            mode=mode,
            max_prompt_chars=self.limits.max_prompt_chars,
            max_tokens_limit=self.limits.max_tokens,
        )

    def admit(self, visitor: str | None) -> None:
        """Count one request against the visitor's per-minute limit; raises RateLimited when over it."""
        if visitor is None:
            return
        if wait := self._rate.admit(visitor):
            per = self.limits.requests_per_minute
            raise RateLimited(
                f"this instance allows {per} requests per minute per visitor; try again in {math.ceil(wait)} s"
            )
