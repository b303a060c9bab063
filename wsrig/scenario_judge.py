"""The fault stage's judge: a ``ScenarioHistory`` and the thresholds -> one row with its findings.

Pure: no I/O, no clock. The probe (``wsrig.scenario``) only drives and records; this
decides, and ``wsrig judge RESULTS_DIR`` calls it again on the stored history. Every
promise has a unit test with a synthetic history that breaks it
(tests/unit/test_scenario_judge.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wsrig.browser_judge import judge_browser
from wsrig.checkers import (
    Finding,
    check_delivery,
    check_gap_declarations,
    check_trading_continued,
    examples,
    judge_other_clients,
    recovery_seconds,
    scan_order,
)
from wsrig.cluster_judge import CLUSTER_PROMISES
from wsrig.history import FaultWindow, Observed, Produced
from wsrig.judges import judge_probe
from wsrig.record import scenario_row
from wsrig.righealth import ProcessHealth, RigHealth, RigLimits, scenario_status
from wsrig.scenario_history import (
    BrowserHistory,
    DurabilityHistory,
    History,
    ProbeHistory,
    ResumeHistory,
    ScenarioHistory,
    SlowClientHistory,
    excused_by_refusals,
)
from wsrig.stats import LatencySummary

__all__ = [
    "PROMISES",
    "ScenarioResult",
    "judge_durability",
    "judge_history",
    "judge_resume",
    "judge_scenario",
    "judge_slow_client",
]


@dataclass
class ScenarioResult:
    """One row of the fault table."""

    name: str
    fault: str
    window: FaultWindow
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    undeclared_drops: int = 0
    declared_dropped: int = 0
    unexpected: int = 0
    recovery_s: float | None = None
    trading_continued: bool = False
    findings: list[Finding] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # (receive time Unix s, end-to-end latency ms) of every frame the live client saw:
    # the report's latency-over-time chart, not part of the verdict
    latency_samples: list[tuple[float, float]] = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool:
        """Derived from the findings, so no check can forget the verdict."""
        return not any(f.severity == "error" for f in self.findings)

    def serialize(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fault": self.fault,
            "passed": self.passed,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "undeclared_drops": self.undeclared_drops,
            "declared_dropped": self.declared_dropped,
            "unexpected": self.unexpected,
            "recovery_s": None if self.recovery_s is None else round(self.recovery_s, 3),
            "trading_continued": self.trading_continued,
            "fault_window": self.window.serialize(),
            "findings": [f.serialize() for f in self.findings],
            **self.extra,
        }


def _produced(h: ScenarioHistory, observed: list[Observed]) -> list[Produced]:
    """The windows each run is judged over: the same run from the settled start to the end,
    or, when the bot restarted, the old run up to what it had produced and the new one from 1."""
    start, after, final = h.stat("start"), h.stat("after"), h.stat("final")
    first = int(start.get("last_seq", 0)) + 1
    acked = int(after.get("acked_seq", 0))
    if h.new_run_id == h.run_id:
        return [Produced(h.run_id, first_seq=first, last_seq=int(final.get("last_seq", 0)), judge_upto=acked)]
    old_last = max([int(h.stat("before").get("last_seq", 0))] + [o.seq for o in observed if o.run_id == h.run_id])
    return [
        Produced(h.run_id, first_seq=first, last_seq=old_last),
        Produced(h.new_run_id, first_seq=1, last_seq=int(final.get("last_seq", 0)), judge_upto=acked),
    ]


def _books(books: Mapping[str, Any] | None) -> list[Finding]:
    """Whole-run count: critical messages the bot produced up to ``last_seq`` = those stored."""
    if not books:
        return []
    run, last = str(books["run_id"])[:8], int(books["last_seq"])
    if not books.get("acked"):
        return [
            Finding("error", f"backend did not ack seq {last} of run {run} within {books.get('timeout_s', 0):.0f}s")
        ]
    stored = books.get("stored_upto_last")
    if stored is None:
        return [Finding("warning", "backend has no /api/events: whole-run critical count not checked")]
    produced = int(books["produced_critical"])
    if int(stored) != produced:
        return [
            Finding(
                "error",
                f"run {run}: bot produced {produced} critical message(s) up to seq {last}, "
                f"backend stored {stored} ({produced - int(stored)} LOST critical)",
            )
        ]
    return []


def _notice_window(
    samples: list[list[Any]], alive: Callable[[list[Any]], bool], dead: Callable[[list[Any]], bool], since_ns: int
) -> tuple[float | None, float | None]:
    """When an end declared the link dead, as seconds after ``since_ns``: no earlier than the
    start of the last sample that still read it alive, no later than the end of the first that
    read it dead (None: never read dead). A sample is ``[t_start, bot, backend, t_end]``."""
    last_alive: float | None = 0.0
    for x in samples:
        start, end = (x[0] - since_ns) / 1e9, (x[-1] - since_ns) / 1e9 if len(x) > 3 else (x[0] - since_ns) / 1e9
        if dead(x):
            return last_alive, end
        if alive(x):
            last_alive = start
    return last_alive, None


def _notices_cut(h: ScenarioHistory, r: ScenarioResult, limits: Mapping[str, Any]) -> list[Finding]:
    """A cut with no RST: each end declares the link dead within its ping interval + ping
    timeout + ``link_close_allowance_s``, read from the bot's ``/stats`` link state and the
    backend's list of publishers. Judged on what the samples prove: an end fails only when a
    sample read it still alive after its bound; the bot reconnects after the heal."""
    out = []
    if r.extra.get("bot_reconnects") == 0:
        out.append(Finding("error", "the bot never reconnected: it did not notice the dead link"))
    if not h.link:
        return out
    m = h.measured
    allowance = float(limits["link_close_allowance_s"])
    cut = [x for x in h.link if h.injected_ns <= x[0] <= h.healed_ns]
    if any(x[1] == "" for x in h.link):
        out.append(Finding("error", "the bot's /stats has no link.state (connected, reconnecting, open_circuit)"))
    ends = (
        ("bot", lambda x: x[1] == "connected", lambda x: x[1] not in ("connected", None, ""), "bot"),
        ("backend", lambda x: x[2] is True, lambda x: x[2] is False, "backend"),
    )
    for end, alive, dead, key in ends:
        bound = float(m[f"{key}_ping_interval_s"]) + float(m[f"{key}_ping_timeout_s"]) + allowance
        earliest, latest = _notice_window(cut, alive, dead, h.injected_ns)
        r.extra[f"{end}_noticed_cut_s"] = None if latest is None else round(latest, 2)
        r.extra[f"{end}_notice_bound_s"] = bound
        if earliest is None or earliest <= bound:
            continue
        if latest is None:
            out.append(
                Finding(
                    "error",
                    f"CUT NOT NOTICED: the {end} still held the link {earliest:.1f}s after the cut, past its bound "
                    f"{bound:g}s (ping interval + ping timeout + close allowance), and at the heal",
                )
            )
        else:
            out.append(
                Finding(
                    "error",
                    f"the {end} still held the link {earliest:.1f}s after the cut > {bound:g}s "
                    "(ping interval + ping timeout + close allowance)",
                )
            )
    healed = [x for x in h.link if x[0] >= h.healed_ns]
    back = next(((x[0] - h.healed_ns) / 1e9 for x in healed if x[1] == "connected"), None)
    r.extra["bot_link_back_s"] = None if back is None else round(back, 2)
    return out


def _queue_overflow(h: ScenarioHistory, r: ScenarioResult, limits: Mapping[str, Any]) -> list[Finding]:
    """The outage overflowed the bot's ephemeral queue (drops declared) and its memory stayed bounded."""
    out = []
    growth = (int(h.measured.get("rss_after", 0)) - int(h.measured.get("rss_before", 0))) / 2**20
    r.extra["bot_rss_growth_mb"] = round(growth, 1)
    if r.declared_dropped == 0:
        out.append(
            Finding("error", "the queue never overflowed (no declared drop): the scenario did not test overflow")
        )
    if growth > float(limits["overflow_rss_growth_max_mb"]):
        out.append(Finding("error", f"bot memory grew {growth:.1f} MB during overflow"))
    return out


def _reconnect_cycles(h: ScenarioHistory, r: ScenarioResult, limits: Mapping[str, Any]) -> list[Finding]:
    """After N resets: exactly one publisher connection, N reconnects, no fd or memory growth."""
    m = h.measured
    cycles = int(m["cycles"])
    fd_growth = int(m.get("fds_after", 0)) - int(m.get("fds_before", 0))
    rss_growth = (int(m.get("rss_after", 0)) - int(m.get("rss_before", 0))) / 2**20
    reconnects = int(m.get("reconnects_after", 0)) - int(m.get("reconnects_before", 0))
    publishers = int(m.get("publisher_connections", 0))
    r.extra.update(
        publisher_connections=publishers,
        fd_growth=fd_growth,
        rss_growth_mb=round(rss_growth, 1),
        bot_reconnects=reconnects,
    )
    out = []
    if publishers != 1:
        out.append(
            Finding(
                "error", f"{publishers} publisher connections for the bot's run after the cycles (expected exactly 1)"
            )
        )
    if reconnects < cycles:
        out.append(Finding("error", f"only {reconnects} reconnects for {cycles} resets"))
    if fd_growth > int(limits["reconnect_fd_growth_max"]):
        out.append(Finding("error", f"bot leaked file descriptors: +{fd_growth}"))
    if rss_growth > float(limits["reconnect_rss_growth_max_mb"]):
        out.append(Finding("error", f"bot memory grew {rss_growth:.1f} MB over the cycles"))
    return out


def _fresh_run_after_restart(h: ScenarioHistory, r: ScenarioResult, limits: Mapping[str, Any]) -> list[Finding]:
    """A restarted bot publishes under a new run_id (PROTOCOL.md: one run_id per process), or,
    if it keeps its run_id, numbers on above what the old process had produced: seqs it
    numbers again from 1 collide with acked ones, and a backend takes them as duplicates."""
    before, after = h.stat("before"), h.stat("after")
    if before.get("started_at") and after.get("started_at"):
        restarted = before["started_at"] != after["started_at"]
    else:  # a bot that does not say when it started: its uptime went back
        restarted = float(after.get("uptime_s", 0)) < float(before.get("uptime_s", 0))
    r.extra["bot_restarted"] = restarted
    if not restarted:
        return [Finding("error", "the bot was not restarted (same started_at): the scenario tested nothing")]
    if h.new_run_id != h.run_id:
        return []
    old_last, new_last = int(before.get("last_seq", 0)), int(after.get("last_seq", 0))
    if new_last <= old_last:
        return [
            Finding(
                "error",
                f"RUN ID REUSED: the restarted bot publishes run {h.run_id[:8]} again, its last seq {new_last} is not "
                f"above the {old_last} the old process had produced: those seqs collide with acked ones (LOST as duplicates)",
            )
        ]
    return []


#: A scenario's own promises beyond the stream's (named in ``ScenarioHistory.promises``).
PROMISES: dict[str, Callable[[ScenarioHistory, ScenarioResult, Mapping[str, Any]], list[Finding]]] = {
    "notices_cut": _notices_cut,
    "queue_overflow": _queue_overflow,
    "reconnect_cycles": _reconnect_cycles,
    "fresh_run_after_restart": _fresh_run_after_restart,
    **CLUSTER_PROMISES,  # the cluster stage's (wsrig.cluster_judge)
}


def judge_scenario(h: ScenarioHistory, limits: Mapping[str, Any]) -> ScenarioResult:
    """The row and findings of one scenario: no loss, no duplicate, in order, drops declared
    exactly, critical messages stored, recovery within ``recovery_bound_s``, trading went on."""
    window = FaultWindow(h.fault, h.injected_ns, h.healed_ns)
    r = ScenarioResult(h.name, h.fault, window)
    live = h.live.observed()
    r.latency_samples = [(recv / 1e9, (recv - int(f["ts_ns"])) / 1e6) for recv, f in h.live.frames if "ts_ns" in f]
    replayed = h.replay.observed() if h.replay is not None else []
    # when the bot restarted, the new run is judged from the client that replayed it from seq 0
    observed = [o for o in live if o.run_id != h.new_run_id or h.replay is None] + replayed
    produced = _produced(h, observed)
    runs = {p.run_id for p in produced}
    excused = excused_by_refusals(live, h.live.refused_at)
    if h.replay is not None:
        excused.update(excused_by_refusals(replayed, h.replay.refused_at))
    stored = {run: set(h.stored.get(run, [])) for run in runs}
    reports = check_delivery(produced, [o for o in observed if o.run_id in runs], stored, excused)
    missed_on_refused = 0
    for rep in reports.values():
        r.lost += len(rep.lost)
        r.duplicated += len(rep.duplicated)
        r.reordered += len(rep.reordered)
        r.undeclared_drops += len(rep.undeclared_drops)
        r.declared_dropped += rep.declared_dropped
        r.unexpected += len(rep.unexpected)
        missed_on_refused += rep.missed_on_refused_resume
        r.findings += rep.findings()
    r.extra["missed_on_refused_resume"] = missed_on_refused
    r.findings += check_gap_declarations({"seq": o.seq, "data": o.data} for o in observed if o.type == "gap")
    r.findings += _books(h.books)

    same_run = h.new_run_id == h.run_id
    before, during, after = h.stat("before"), h.stat("during"), h.stat("after")
    r.recovery_s = recovery_seconds(live, h.healed_ns, {h.new_run_id})
    if same_run:
        ok, stalled = check_trading_continued(before, during, h.require_trades)
    else:  # the bot itself restarted: its new process must be trading again
        ok, stalled = check_trading_continued({"trading": {"ticks": 0, "trades": 0}}, after, h.require_trades)
    r.trading_continued = ok
    if stalled:
        r.findings.append(Finding("error", f"during the fault: {stalled.message}"))
    if h.settle_error:
        r.findings.append(Finding("error", h.settle_error))
    bound = float(limits["recovery_bound_s"])
    if r.recovery_s is None:
        r.findings.append(Finding("error", "no message observed after heal"))
    elif r.recovery_s > bound:
        r.findings.append(Finding("error", f"recovery {r.recovery_s:.1f}s > bound {bound:.0f}s"))
    r.extra.update(
        run_id=h.run_id[:8],
        new_run_id=None if same_run else h.new_run_id[:8],
        observed=len(observed),
        subscriber_reconnects=max(0, h.live.connections - 1),
        resume_refused=len(h.live.refused_at),
        bot_reconnects=int(after.get("reconnects", 0)) - int(before.get("reconnects", 0)) if same_run else None,
        dropped_by_bot=int(after.get("dropped_total", 0)) - int(before.get("dropped_total", 0)) if same_run else None,
    )
    for promise in h.promises:
        r.findings += PROMISES[promise](h, r, limits)
    return r


#: Fewest latency samples a window (baseline or harm) must hold for its P99 to be compared.
MIN_WINDOW_SAMPLES = 200


def _non_reader_cut_s(h: SlowClientHistory) -> tuple[bool, float | None, float]:
    """Whether the backend ever listed the client that read nothing; seconds from the harm
    window's start (when it stopped reading) to the first answered status that no longer
    lists it (None: listed to the end); and how long the polls covered."""
    start = h.harm[0]
    answered = [row for row in h.polls if row[1]]
    listed = any(row[2] is not None for row in answered)
    last = max([(row[0] - start) / 1e9 for row in answered], default=0.0)
    for t, _, depth, _, _ in answered:
        if t >= start and depth is None:
            return listed, (t - start) / 1e9, last
    return listed, None, last


def judge_slow_client(h: SlowClientHistory, limits: Mapping[str, Any], rig_limits: RigLimits) -> dict[str, Any]:
    """One slow client harms no other, judged as a difference within one run.

    The other clients' latency (from each frame's intended send time; a frame never
    received counts as late as the reading went on) while one client
    read nothing and one read slowly, against the same clients' latency without them: the
    P99 may rise by at most ``slow_client_harm_p99_ms`` and stay under
    ``slow_client_p99_ms``. Each other client got the run whole, once, in order, and was
    never closed; the
    client that read nothing was cut (policy: close 1013, ``slow_client_disconnects``
    rose) within ``slow_client_cut_max_s`` of its last read; the backend's memory stayed
    within ``backend_rss_growth_max_mb``; the bot traded on.

    A late rig only adds to the others' latency: a broken latency bound with a lagging
    rig is ``invalid``, never ``failed``; a correctness finding fails whatever the rig did.
    """
    produced = Produced(
        str(h.produced["run_id"]), last_seq=int(h.produced["last_seq"]), first_seq=int(h.produced["first_seq"])
    )
    other, findings = judge_other_clients(produced, [c.observed() for c in h.others], h.bot_before, h.bot_after)
    rig = RigHealth(tuple(ProcessHealth(**p) for p in h.rig))
    lag = rig.lagging(rig_limits)
    samples = h.latencies()
    alone = LatencySummary.from_ms(ms for t, ms in samples if h.baseline[0] <= t < h.baseline[1])
    harmed = LatencySummary.from_ms(ms for t, ms in samples if h.harm[0] <= t < h.harm[1])
    added = round(harmed.p99 - alone.p99, 3)
    growth_mb = (int(h.status_after.get("rss_bytes") or 0) - int(h.status_before.get("rss_bytes") or 0)) / 2**20
    listed, cut_s, polled_s = _non_reader_cut_s(h)

    def disconnects(status: Mapping[str, Any]) -> int:
        return int(status.get("counters", {}).get("slow_client_disconnects", 0))

    cut = disconnects(h.status_after) - disconnects(h.status_before)
    if min(alone.count, harmed.count) < MIN_WINDOW_SAMPLES:
        findings.append(
            Finding(
                "error",
                f"nothing to compare: the others received {alone.count} frames of the run without the slow"
                f" clients and {harmed.count} with them (at least {MIN_WINDOW_SAMPLES} each)",
            )
        )
    if not listed and cut < 1:
        findings.append(
            Finding(
                "error", "the client that read nothing never appeared in the backend's client list: nothing was tested"
            )
        )
    elif cut_s is None:
        findings.append(
            Finding(
                "error",
                f"SLOW CLIENT NOT CUT: the client that read nothing was still connected {polled_s:.1f}s after it"
                f" stopped reading (bound {limits['slow_client_cut_max_s']}s; policy: close 1013 when its queue is full)",
            )
        )
    elif cut_s > float(limits["slow_client_cut_max_s"]):
        findings.append(
            Finding(
                "error",
                f"SLOW CLIENT CUT LATE: the client that read nothing was cut {cut_s:.1f}s after it stopped"
                f" reading, past the bound {limits['slow_client_cut_max_s']}s",
            )
        )
    if cut < 1:
        findings.append(
            Finding("error", "the slow client was never cut (slow_client_disconnects did not rise; policy: close 1013)")
        )
    for k, log in enumerate(h.others, 1):
        for code in [c for c in log.close_codes if c is not None]:
            findings.append(
                Finding(
                    "error",
                    f"SLOW CLIENT HARMED THE OTHERS: other client {k}, which read all it was sent,"
                    f" was closed by the backend (code {code})",
                )
            )
    if growth_mb > float(limits["backend_rss_growth_max_mb"]):
        findings.append(Finding("error", f"backend memory grew {growth_mb:.1f} MB with a slow client"))
    timing = []
    if added > float(limits["slow_client_harm_p99_ms"]):
        timing.append(
            f"SLOW CLIENT HARMED THE OTHERS: their P99 went from {alone.p99} ms without slow clients to"
            f" {harmed.p99} ms while one read nothing and one read {h.reader_rate:g} frames/s"
            f" (+{added} ms, bound +{limits['slow_client_harm_p99_ms']} ms)"
        )
    if harmed.p99 > float(limits["slow_client_p99_ms"]):
        timing.append(f"other clients' P99 {harmed.p99} ms > {limits['slow_client_p99_ms']} ms while clients were slow")
    status = scenario_status([f.message for f in findings if f.severity == "error"], timing, [], lag)
    if status == "failed":
        findings += [Finding("error", t) for t in timing]
    return scenario_row(
        h.name,
        "slow clients",
        findings,
        status,
        invalid_reasons=lag if status == "invalid" else [],
        rig_health=rig.serialize(),
        latency_ms=harmed.serialize(),
        baseline_latency_ms=alone.serialize(),
        harm_added_p99_ms=added,
        non_reader_cut_s=None if cut_s is None else round(cut_s, 2),
        slow_reader_frames=int(h.slow_reader.get("frames", 0)),
        slow_client_disconnects=cut,
        backend_rss_growth_mb=round(growth_mb, 1),
        **other,
    )


def judge_durability(h: DurabilityHistory) -> dict[str, Any]:
    """Acked means durable: every seq the backend acked before a SIGKILL is in its store after
    the restart, an acked seq read back at once is there, its welcome never goes below what
    it had acked, nothing is stored twice, and by the end every envelope sent is acked and
    stored. At least one kill must have landed with envelopes in flight, or the scenario
    tested nothing."""
    count = Counter(h.stored)
    have = set(count)
    findings: list[Finding] = []
    kills: list[dict[str, Any]] = []
    in_flight: list[int] = []
    counted: set[int] = set()
    for i, k in enumerate(h.kills, 1):
        acked, sent, welcome = int(k["acked_before"]), int(k["sent_before"]), k.get("welcome_acked")
        lost = [s for s in range(1, acked + 1) if s not in have and s not in counted]
        counted.update(lost)
        in_flight.append(sent - acked)
        kills.append(
            {
                "kill": i,
                "acked_before": acked,
                "in_flight": sent - acked,
                "welcome_acked": welcome,
                "acked_lost": len(lost),
            }
        )
        if lost:
            findings.append(
                Finding(
                    "error",
                    f"ACKED BUT LOST at kill {i}: {len(lost)} seq(s) the backend acknowledged before the SIGKILL "
                    f"are not in its store after the restart: seqs {examples(lost)}",
                )
            )
        if welcome is not None and int(welcome) < acked:
            findings.append(
                Finding(
                    "error",
                    f"kill {i}: after the restart the backend's welcome said acked_seq {welcome}, "
                    f"but it had acked seq {acked} before the kill: it forgot what it acknowledged",
                )
            )
    if h.kills and all(n <= 0 for n in in_flight):
        findings.append(
            Finding("error", "no kill landed mid-stream (nothing in flight at any kill): durability was not tested")
        )
    unread = [acked for acked, seen in h.read_after_ack if seen != acked]
    if unread:
        findings.append(
            Finding(
                "error",
                f"ACKED BUT NOT STORED: {len(unread)} of {len(h.read_after_ack)} reads right after an ack "
                f"did not find the acked seq in the store: seqs {examples(unread)}",
            )
        )
    late = [s for s in range(1, min(h.final_acked, h.sent) + 1) if s not in have and s not in counted]
    if late:
        findings.append(
            Finding(
                "error", f"ACKED BUT LOST: {len(late)} seq(s) acked at the end are not stored: seqs {examples(late)}"
            )
        )
    twice = sorted(s for s, n in count.items() if n > 1)
    if twice:
        findings.append(Finding("error", f"STORED TWICE: {len(twice)} seq(s): {examples(twice)}"))
    unexpected = sorted(s for s in have if not 1 <= s <= h.sent)
    if unexpected:
        findings.append(Finding("error", f"UNEXPECTED: stored seqs never sent: {examples(unexpected)}"))
    if h.final_acked < h.sent:
        why = f" ({h.settle_error})" if h.settle_error else ""
        findings.append(Finding("error", f"only seq {h.final_acked} of {h.sent} sent was acked in the end{why}"))
    return scenario_row(
        h.name,
        f"SIGKILL of the backend x{len(h.kills)} under critical traffic",
        findings,
        sent=h.sent,
        stored=len(have),
        acked_lost=len(counted) + len(late),
        stored_twice=len(twice),
        reads_after_ack=len(h.read_after_ack),
        acked_not_stored_reads=len(unread),
        kills=kills,
        seed=h.seed,
    )


def judge_resume(h: ResumeHistory) -> dict[str, Any]:
    """Resume is honest. ``resumed: true`` promises every seq after the resume point; with
    ``false`` the client knows it missed some, but after a restart a stored (critical)
    envelope must still be replayed, and everything sent while it read must arrive. Once
    each, in order, either way.
    """
    seqs = [o.seq for o in h.client.observed()]
    seen, twice, late = scan_order(seqs)
    declared: set[int] = set()
    for o in h.client.observed():
        if o.type == "gap":
            for a, b in o.data.get("ranges", []):
                declared.update(range(int(a), int(b) + 1))
    expected = set(range(h.resume_after + 1, h.final_seq + 1))
    missing = sorted(expected - seen - declared)
    stored = set(h.stored)
    missing_stored = [s for s in missing if s in stored]
    missing_live = [s for s in missing if s >= h.live_from]
    findings: list[Finding] = []
    run = h.run_id[:14]
    if h.resumed is None:
        findings.append(Finding("error", "the resuming client got no snapshot (no resumed flag)"))
    elif h.resumed and missing:
        findings.append(
            Finding(
                "error",
                f"RESUME LIED after the {h.hole}: the backend answered resumed=true for run {run} after seq "
                f"{h.resume_after}, but {len(missing)} seq(s) never arrived and none was declared: {examples(missing)}",
            )
        )
    # After a restart the ring is refilled from the store, so stored envelopes must be
    # replayed (PROTOCOL.md, resume); after an overflow resumed=false is the whole promise
    # and the client reads the store itself.
    if missing_stored and h.hole == "restart":
        findings.append(
            Finding(
                "error",
                f"resume after the {h.hole}: {len(missing_stored)} stored critical seq(s) of run {run} were not "
                f"replayed: {examples(missing_stored)}",
            )
        )
    if missing_live:
        findings.append(
            Finding(
                "error",
                f"LOST after the resume: {len(missing_live)} live seq(s) never arrived: {examples(missing_live)}",
            )
        )
    if twice:
        findings.append(Finding("error", f"DUPLICATED on resume: seqs {examples(twice)}"))
    if late:
        findings.append(Finding("error", f"REORDERED on resume: seqs {examples(late)}"))
    hole_made = bool(missing) or h.resumed is False
    if not hole_made:
        findings.append(Finding("info", f"no hole after the {h.hole}: the backend replayed every seq"))
    return scenario_row(
        h.name,
        f"resume across the backend's {h.hole}",
        findings,
        resumed=h.resumed,
        resume_after=h.resume_after,
        expected_after_resume=len(expected),
        received=len(seen),
        missing_declared_incomplete=len(missing) if h.resumed is False else 0,
        missing_stored_critical=len(missing_stored),
        lost=len(missing_live),
        duplicated=len(twice),
        reordered=len(late),
    )


def judge_history(h: History, thresholds: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """Any kind of fault-stage history -> its row (with ``findings``), under ``thresholds``
    (every stage's table, profile applied: the slow client also reads ``rig_health``)."""
    limits = dict(thresholds.get(stage, {}))
    if isinstance(h, DurabilityHistory):
        return judge_durability(h)
    if isinstance(h, ResumeHistory):
        return judge_resume(h)
    if isinstance(h, SlowClientHistory):
        return judge_slow_client(h, limits, RigLimits.from_thresholds(dict(thresholds.get("rig_health", {}))))
    if isinstance(h, BrowserHistory):
        return judge_browser(h, limits)
    if isinstance(h, ProbeHistory):
        rig = thresholds.get("rig_health")
        return judge_probe(h, limits, RigLimits.from_thresholds(dict(rig)) if rig else None)
    return judge_scenario(h, limits).serialize()
