"""Dead letters: every frame the backend rejects, kept with its reason. No I/O.

A rejected frame is answered with an error frame and counted; here it is also kept, so
that nothing a publisher sent is silently gone: the rig (and an operator) can account
for each frame as stored, broadcast, declared dropped, or dead-lettered. The store is
bounded: the oldest letters go first (``evicted`` counts them), and each keeps at most
``RAW_MAX`` bytes of the frame. It lives in memory: a restart empties it (the counters
in the status API say how many there were).
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["RAW_MAX", "DeadLetter", "DeadLetters"]

#: Bytes of a rejected frame kept with its letter (the rest is counted in ``size``).
RAW_MAX = 512


@dataclass(frozen=True)
class DeadLetter:
    id: int
    at: float  # Unix seconds
    source: str  # "publisher" (a frame on /ws) or "hello" (the first frame of a publisher)
    code: str  # the error code the sender was told (PROTOCOL.md), or the close reason
    detail: str
    run_id: str | None
    seq: int | None
    size: int  # bytes of the whole frame
    raw: str  # its first RAW_MAX bytes, undecodable bytes replaced

    def serialize(self) -> dict[str, Any]:
        return asdict(self)


class DeadLetters:
    """The newest ``capacity`` rejected frames, and counts of every one ever rejected."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(0, capacity)
        self._letters: deque[DeadLetter] = deque()
        self._ids = itertools.count(1)
        self.total = 0
        self.evicted = 0
        self.by_code: Counter[str] = Counter()

    def add(
        self,
        code: str,
        detail: str,
        raw: str | bytes,
        *,
        source: str = "publisher",
        run_id: object = None,
        seq: object = None,
        now: float | None = None,
    ) -> DeadLetter:
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
        letter = DeadLetter(
            id=next(self._ids),
            at=time.time() if now is None else now,
            source=source,
            code=code,
            detail=detail[:300],
            run_id=run_id if isinstance(run_id, str) else None,
            seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            size=len(data),
            raw=data[:RAW_MAX].decode("utf-8", "replace"),
        )
        self.total += 1
        self.by_code[code] += 1
        if self.capacity:
            self._letters.append(letter)
            while len(self._letters) > self.capacity:
                self._letters.popleft()
                self.evicted += 1
        else:
            self.evicted += 1
        return letter

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(self._letters)

    def __len__(self) -> int:
        return len(self._letters)

    def query(
        self, after_id: int = 0, run_id: str | None = None, code: str | None = None, limit: int = 1000
    ) -> list[DeadLetter]:
        """Kept letters with ``id > after_id`` (oldest first), optionally of one run or code."""
        out = []
        for letter in self._letters:
            if letter.id <= after_id or (run_id and letter.run_id != run_id) or (code and letter.code != code):
                continue
            out.append(letter)
            if len(out) >= limit:
                break
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "kept": len(self._letters),
            "evicted": self.evicted,
            "capacity": self.capacity,
            "by_code": dict(sorted(self.by_code.items())),
        }
