"""What one fault scenario recorded: plain data, written to the results folder, judged offline.

``wsrig.scenario`` drives a scenario and fills a ``ScenarioHistory``; ``wsrig.scenario_judge``
turns it and the thresholds into a verdict; ``wsrig judge RESULTS_DIR`` re-reads the file
and judges it again, as Jepsen re-checks a stored history. Nothing here does I/O but
``save``/``load``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Self, cast

from wsrig.history import Observed, SeqSet, observed_from_frames

__all__ = [
    "HISTORY_SUFFIX",
    "BrowserHistory",
    "ProbeHistory",
    "ClientLog",
    "DurabilityHistory",
    "ScenarioHistory",
    "SlowClientHistory",
    "History",
    "ResumeHistory",
    "excused_by_refusals",
    "history_path",
    "load_history",
    "trim_frame",
]

HISTORY_SUFFIX = ".history.json"
_NO_END = 2**53


def history_path(results: Path, stage: str, scenario: str) -> Path:
    return results / f"{stage}.{scenario}{HISTORY_SUFFIX}"


def trim_frame(frame: dict[str, Any]) -> dict[str, Any]:
    """The fields a judge reads; a gap's ``data`` (its declared ranges) is kept, payloads are not."""
    keep: dict[str, Any] = {k: frame[k] for k in ("run_id", "seq", "type", "ts_ns") if k in frame}
    if frame.get("type") == "snapshot":
        keep.update(resumed=frame.get("resumed"), runs=frame.get("runs") or {})
    if frame.get("type") == "gap":
        keep["data"] = frame.get("data") or {}
    return keep


@dataclass
class ClientLog:
    """What one resuming dashboard client saw: every envelope with its receive time (epoch ns),
    how often it connected, and each resume the backend refused (run_id, resume point)."""

    frames: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    connections: int = 0
    refused_at: list[tuple[str, int]] = field(default_factory=list)
    close_codes: list[int | None] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        frames: list[tuple[int, dict[str, Any]]],
        connections: int,
        refused_at: list[tuple[str, int]],
        close_codes: list[int | None],
    ) -> ClientLog:
        return cls([(t, trim_frame(f)) for t, f in frames], connections, list(refused_at), list(close_codes))

    def observed(self) -> list[Observed]:
        return observed_from_frames(self.frames)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClientLog:
        return cls(
            frames=[(int(t), dict(f)) for t, f in d.get("frames", [])],
            connections=int(d.get("connections", 0)),
            refused_at=[(str(r), int(s)) for r, s in d.get("refused_at", [])],
            close_codes=list(d.get("close_codes", [])),
        )


def excused_by_refusals(observed: list[Observed], refused_at: list[tuple[str, int]]) -> dict[str, SeqSet]:
    """Seqs the backend said it could not replay: from each refused resume point to the next
    seq the client saw of that run (nothing later seen: everything after the resume point)."""
    out: dict[str, SeqSet] = {}
    for run_id, after in refused_at:
        later = [o.seq for o in observed if o.run_id == run_id and o.seq > after]
        end = min(later) - 1 if later else _NO_END
        out.setdefault(run_id, SeqSet()).add_range(after + 1, end)
    return out


class _Stored:
    """A history kept as compact JSON; read back with the fields this version knows, its
    client logs (``_logs``) rebuilt."""

    _logs: ClassVar[tuple[str, ...]] = ()
    _log_lists: ClassVar[tuple[str, ...]] = ()

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(cast(Any, self)), separators=(",", ":")))
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        d = dict(d)
        for key in cls._logs:
            d[key] = ClientLog.from_dict(d[key]) if d.get(key) else None
        for key in cls._log_lists:
            d[key] = [ClientLog.from_dict(log) for log in d.get(key) or []]
        known = {f.name for f in fields(cast(Any, cls))}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class ScenarioHistory(_Stored):
    """Everything one run of traffic -> fault -> hold -> heal -> settle recorded.

    ``stats`` holds the bot's ``/stats`` at ``start`` (settled), ``before`` the fault,
    ``during`` it (None: the bot was down), ``after`` the heal (settled again) and
    ``final``. ``live`` is the client that followed the run from before the fault;
    ``replay`` the one that replayed a new run from seq 0 when the bot restarted.
    ``stored`` is the backend's durable store per run (critical seqs); ``books`` the
    whole-run count of critical messages (bot's produced count vs. store).
    ``measured`` holds what a scenario measures besides the stream (memory, fds,
    publishers), and ``promises`` names the scenario's own checks on them
    (``wsrig.scenario_judge.PROMISES``).
    """

    name: str
    fault: str
    injected_ns: int
    healed_ns: int
    run_id: str
    new_run_id: str
    stats: dict[str, dict[str, Any] | None]
    live: ClientLog
    replay: ClientLog | None = None
    stored: dict[str, list[int]] = field(default_factory=dict)
    books: dict[str, Any] | None = None
    settle_error: str | None = None
    require_trades: bool = True
    measured: dict[str, Any] = field(default_factory=dict)
    promises: list[str] = field(default_factory=list)
    #: ``[t_start_ns, bot's link state, backend lists the bot's publisher, t_end_ns]`` from
    #: just before the injection on (None where an end did not answer, "" for a /stats
    #: without a link state), when the scenario samples the link
    link: list[list[Any]] = field(default_factory=list)
    version: int = 1
    _logs: ClassVar[tuple[str, ...]] = ("live", "replay")

    def stat(self, when: str) -> dict[str, Any]:
        return dict(self.stats.get(when) or {})


@dataclass
class SlowClientHistory(_Stored):
    """One slow client harms no other, measured in one run against its own baseline.

    The rig's publisher sent ``rate`` 4 KB frames/s of run ``produced`` (``run_id``,
    ``first_seq``, ``last_seq``) on a fixed schedule from ``schedule_start_ns``, each
    stamped (``ts_ns``) with its intended send time; the others were read until
    ``read_until_ns``. ``others`` are normal clients' views of that run: alone during
    ``baseline`` and, during ``harm``, while one client read nothing and one read
    ``reader_rate`` frames/s (both ``[start_ns, end_ns)`` of intended times, epoch ns).
    ``polls`` are the backend's status read throughout: ``[t_ns, answered, the
    non-reader's queue depth or None when not listed, the slow reader's, the
    slow_client_disconnects counter]``; ``slow_reader`` what that client read
    (``frames``, ``close_code``). ``status_*`` the backend's status API and ``bot_*`` the
    bot's ``/stats`` before and after; ``rig`` the rig's own health (``ProcessHealth``
    fields), so a late rig is told from a slow system.
    """

    name: str
    produced: dict[str, Any]
    rate: float
    reader_rate: float
    baseline: list[int]
    harm: list[int]
    others: list[ClientLog]
    polls: list[list[Any]]
    slow_reader: dict[str, Any]
    status_before: dict[str, Any]
    status_after: dict[str, Any]
    bot_before: dict[str, Any]
    bot_after: dict[str, Any]
    rig: list[dict[str, Any]]
    schedule_start_ns: int = 0
    read_until_ns: int = 0
    kind: str = "slow_client"
    version: int = 2
    _log_lists: ClassVar[tuple[str, ...]] = ("others",)

    def intended_ns(self, seq: int) -> int:
        """When the schedule meant ``seq`` to leave (the publisher stamps the same)."""
        return self.schedule_start_ns + int((seq - int(self.produced["first_seq"])) * (1e9 / self.rate))

    def latencies(self) -> list[tuple[int, float]]:
        """``(intended ns, ms from intended send to receipt)`` of every frame of the run, per
        other client; a frame a client never received counts as late as the reading went on
        (``read_until_ns``), so a stalled client shows in the latency, not only as loss."""
        run, first, last = self.produced["run_id"], int(self.produced["first_seq"]), int(self.produced["last_seq"])
        out: list[tuple[int, float]] = []
        for log in self.others:
            got = {int(f["seq"]) for _, f in log.frames if f.get("run_id") == run}
            out += [(int(f["ts_ns"]), (t - int(f["ts_ns"])) / 1e6) for t, f in log.frames if f.get("run_id") == run]
            for seq in range(first, last + 1):
                if seq not in got:
                    due = self.intended_ns(seq)
                    out.append((due, (self.read_until_ns - due) / 1e6))
        return out


@dataclass
class DurabilityHistory(_Stored):
    """The rig's publisher sent critical envelopes 1..``sent`` of ``run_id`` while the backend
    was SIGKILLed; per kill (``kills``): when (``at_ns``), the highest seq acked before the
    process died (``acked_before``), the highest seq sent (``sent_before``) and the
    ``acked_seq`` the backend's welcome gave after its restart (``welcome_acked``).
    ``stored`` is every seq of the run the store returned afterwards (repeats kept),
    ``final_acked`` the last ack of the closing session, and ``read_after_ack`` the reads
    taken while the traffic ran: ``[acked, first stored seq >= acked (0: none)]``.
    """

    name: str
    run_id: str
    seed: int
    window: int
    kills: list[dict[str, Any]]
    sent: int = 0
    final_acked: int = 0
    stored: list[int] = field(default_factory=list)
    settle_error: str | None = None
    read_after_ack: list[list[int]] = field(default_factory=list)
    kind: str = "durability"
    version: int = 1


@dataclass
class ResumeHistory(_Stored):
    """A client resumed run ``run_id`` after seq ``resume_after`` across a ``hole``
    (``restart`` of the backend, or ``overflow`` of its ring). The rig's publisher sent
    seqs 1..``final_seq`` (every ``critical_every``-th critical), all acked: up to
    ``last_before_resume`` before the client resumed, from ``live_from`` while it read.
    ``resumed`` is what the snapshot said; ``client`` what the client received of the
    run; ``stored`` the critical seqs in the store afterwards.
    """

    name: str
    hole: str
    run_id: str
    resume_after: int
    last_before_resume: int
    live_from: int
    final_seq: int
    critical_every: int
    resumed: bool | None
    client: ClientLog
    stored: list[int] = field(default_factory=list)
    kind: str = "resume"
    version: int = 1
    _logs: ClassVar[tuple[str, ...]] = ("client",)


@dataclass
class BrowserHistory(_Stored):
    """What the dashboard page did in Chromium during one scenario.

    ``page`` is every WebSocket frame the page received, as the browser's network layer
    reported it (Playwright's ``framereceived``, not the page's own code): receive time
    (epoch ns) and the frame trimmed as ``ClientLog`` trims it (a snapshot keeps its
    ``resumed`` flag and ``runs``); ``page.connections`` the sockets the page opened.
    ``states`` samples the page's connection state: ``[t_ns, data-state, data-seq]``.
    ``comparisons`` are quiet moments: ``/api/state`` read twice around a read of the
    page's DOM (``before``, ``dom``, ``after``). ``console`` holds the page's console
    errors and warnings and uncaught exceptions (``[t_ns, kind, text]``), ``failed``
    the requests that failed. ``produced`` is the run judged for completeness
    (``run_id``, ``first_seq``, ``last_seq``, and ``judge_upto``: loss is judged up to
    there, what the publisher had acked when the page was awaited); ``fault`` ``[injected_ns, healed_ns]``
    when the backend was restarted under the page; ``sent`` what the rig published
    itself (``rate``, ``count``, ``last_price``); ``page_stats`` the page's own counters
    (``window.wsrigDashboard``) and ``long_tasks`` the main thread's long tasks
    (``count``, ``total_ms``, ``max_ms``) from the browser's PerformanceObserver.
    """

    name: str
    page: ClientLog
    states: list[list[Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    console: list[list[Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    produced: dict[str, Any] = field(default_factory=dict)
    fault: list[int] | None = None
    sent: dict[str, Any] = field(default_factory=dict)
    page_stats: dict[str, Any] = field(default_factory=dict)
    long_tasks: dict[str, Any] = field(default_factory=dict)
    screenshots: list[str] = field(default_factory=list)
    kind: str = "browser"
    version: int = 1
    _logs: ClassVar[tuple[str, ...]] = ("page",)


@dataclass
class ProbeHistory(_Stored):
    """What one probe of a stage without a history type of its own measured, raw: the
    samples and counts (``measured``) its stage's judge turns into checks and findings
    (``wsrig.judges``)."""

    name: str
    stage: str
    measured: dict[str, Any] = field(default_factory=dict)
    kind: str = "probe"
    version: int = 1


History = ScenarioHistory | SlowClientHistory | DurabilityHistory | ResumeHistory | BrowserHistory | ProbeHistory


_KINDS: dict[str | None, type[History]] = {
    None: ScenarioHistory,  # a fault scenario's history has no ``kind``
    "slow_client": SlowClientHistory,
    "browser": BrowserHistory,
    "probe": ProbeHistory,
    "durability": DurabilityHistory,
    "resume": ResumeHistory,
}


def load_history(path: Path) -> History:
    """Any kind of fault-stage history, by its ``kind`` field."""
    data = json.loads(path.read_text())
    kind = data.get("kind")
    cls = _KINDS.get(kind)
    if cls is None:
        raise ValueError(f"{path.name}: unknown history kind {kind!r}")
    want = next(f.default for f in fields(cast(Any, cls)) if f.name == "version")
    if data.get("version", 1) != want:
        raise ValueError(
            f"{path.name}: a version {data.get('version', 1)} {kind} history; this rig reads version {want}"
            " (run the stage again to record it)"
        )
    return cls.from_dict(data)
