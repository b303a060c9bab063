"""Per-connection limits that need a little state: a token bucket. No I/O.

The glue asks the bucket before handling each frame. Publishers are *throttled* (the
reader waits ``reserve()`` seconds, so TCP backpressure slows the sender and nothing
is dropped); dashboard clients, which only ever send one ``subscribe``, are *closed*
when ``allow()`` says no. See docs/SECURITY.md.
"""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` frames a second on average, bursts of up to ``burst``; ``rate <= 0`` is unlimited.

    Time is passed in (monotonic seconds), so the bucket is tested without a clock.
    """

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = float(rate)
        self.burst = max(1.0, float(burst))
        self._tokens = self.burst
        self._at = now

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now

    def allow(self, now: float) -> bool:
        """Take one token if there is one; False means over the limit (nothing taken)."""
        if self.unlimited:
            return True
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def reserve(self, now: float) -> float:
        """Take one token, going into debt if need be; return how long to wait for it (s)."""
        if self.unlimited:
            return 0.0
        self._refill(now)
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
