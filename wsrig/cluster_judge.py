"""The cluster stage's own promises, judged from a ``ScenarioHistory`` (docs/CLUSTER.md).

Pure: no I/O, no clock. ``wsrig.scenario_judge.judge_scenario`` judges a cluster
scenario as any fault scenario (no loss, no duplicate, order per run, trading went on,
bounded recovery, for the client ``run_scenario`` follows) and then the promises the
history names, from these. What the cluster probe recorded beside the stream, in
``ScenarioHistory.measured``:

- ``fleet``: more resuming clients through the balancer, spread over the replicas:
  ``[{"after_seq": n, "log": ClientLog}]``, each following the bot's run from ``after_seq``;
  ``fleet_last_seq`` the bot's last seq when they stopped reading (the window they are judged over);
- ``samples``: every ``sample_s`` from before the injection to the end,
  ``[t_ns, bot, replicas, balancer]``: ``bot`` = ``[acked_seq, last_seq, connected]`` (None:
  no answer); ``replicas`` = ``{service: [/ready status or None, its acked_seq of the run or
  None, holds the bot's publisher or None]}`` read from each replica's own HTTP API;
  ``balancer`` = ``{service: [status, current sessions]}`` from HAProxy's stats CSV (None: no answer);
- ``victim``: the replica the fault hit; ``victim_sessions_before`` its sessions in the balancer
  just before; ``victim_held_publisher`` whether the bot's publisher was on it;
- ``log``: the shared log read from Redis after the settle, the run's entries
  ``[[seq, type, gap ranges]]`` (``read``: False with ``error`` when it could not be read);
- ``restarted``: the rolling restart's ``[service, stop_ns, up_ns]``; ``replicas`` every replica.

Every promise has a unit test with a synthetic history that breaks it
(tests/unit/test_cluster_judge.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from wsrig.checkers import Finding, check_delivery, examples
from wsrig.history import Produced, SeqSet
from wsrig.scenario_history import ClientLog, ScenarioHistory

if TYPE_CHECKING:
    from wsrig.scenario_judge import ScenarioResult

__all__ = ["CLUSTER_PROMISES", "log_accounts", "fleet_logs"]

Promise = Callable[[ScenarioHistory, "ScenarioResult", Mapping[str, Any]], list[Finding]]


def fleet_logs(h: ScenarioHistory) -> list[tuple[int, ClientLog]]:
    return [(int(c["after_seq"]), ClientLog.from_dict(c["log"])) for c in h.measured.get("fleet", [])]


def _samples(h: ScenarioHistory, start_ns: int, end_ns: int) -> list[list[Any]]:
    return [s for s in h.measured.get("samples", []) if start_ns <= int(s[0]) <= end_ns]


def _after(t_ns: int, since_ns: int) -> float:
    return round((t_ns - since_ns) / 1e9, 2)


def _fleet_whole(h: ScenarioHistory, r: ScenarioResult, limits: Mapping[str, Any]) -> list[Finding]:
    """Every client of the fleet got the run whole after its resume point, once each, in order,
    across whatever replica it was moved to; a resume the cluster refused is a finding (the
    log is shared: any replica can resume any client)."""
    fleet = fleet_logs(h)
    if not fleet:
        return [Finding("error", "no client fleet was recorded: the cluster's clients were not tested", "fleet")]
    final, after = h.stat("final"), h.stat("after")
    last = int(h.measured.get("fleet_last_seq") or final.get("last_seq", 0))
    acked = int(after.get("acked_seq", 0))
    out: list[Finding] = []
    lost = dup = late = refused = moved = silent = 0
    for i, (after_seq, log) in enumerate(fleet, 1):
        produced = Produced(h.run_id, last_seq=last, first_seq=after_seq + 1, judge_upto=acked)
        observed = [o for o in log.observed() if o.run_id == h.run_id]
        rep = check_delivery([produced], observed, {}, {}).get(h.run_id)
        if rep is None:
            continue
        lost, dup, late = lost + len(rep.lost), dup + len(rep.duplicated), late + len(rep.reordered)
        moved += log.connections > 1
        if not any(int(t) >= h.healed_ns for t, _ in log.frames):
            silent += 1
            out.append(Finding("error", f"fleet client {i} received nothing after the heal", "fleet"))
        for f in rep.findings():
            out.append(Finding(f.severity, f"fleet client {i}: {f.message}", "fleet", f.evidence))
        if log.refused_at:
            refused += 1
            points = ", ".join(f"{run[:8]}@{seq}" for run, seq in log.refused_at)
            out.append(
                Finding(
                    "error",
                    f"RESUME REFUSED ACROSS REPLICAS: fleet client {i} reconnected and was told its resume"
                    f" ({points}) could not be honoured, though every replica reads the same log",
                    "fleet_resume",
                    {"refused_at": [list(p) for p in log.refused_at]},
                )
            )
    r.extra.update(
        fleet_clients=len(fleet),
        fleet_moved=moved,
        fleet_lost=lost,
        fleet_duplicated=dup,
        fleet_reordered=late,
        fleet_refused=refused,
        fleet_silent=silent,
    )
    return out


def _clients_moved(h: ScenarioHistory, r: ScenarioResult, limits: Mapping[str, Any]) -> list[Finding]:
    """The hit replica's clients reconnected through the balancer to the others and resumed:
    it held some before the fault, at least as many fleet clients reconnected, and (a
    partition, where it stays alive) it held no session once the balancer had drained it."""
    victim = str(h.measured.get("victim", ""))
    before = int(h.measured.get("victim_sessions_before", 0))
    moved = sum(log.connections > 1 for _, log in fleet_logs(h))
    held_fleet = int(h.measured.get("victim_fleet_before", before))
    r.extra.update(victim=victim, victim_sessions_before=before, clients_moved=moved)
    out = []
    if before < 1:
        out.append(
            Finding("error", f"{victim} held no session before the fault: moving its clients was not tested", "moved")
        )
    elif moved < min(held_fleet, len(fleet_logs(h))):
        out.append(
            Finding(
                "error",
                f"CLIENTS NOT MOVED: {victim} held {held_fleet} fleet client(s) before the fault, only {moved}"
                " reconnected through the balancer",
                "moved",
                {"victim_fleet_before": held_fleet, "moved": moved},
            )
        )
    down = _first(h, h.injected_ns, h.healed_ns, lambda s: _balancer(s, victim)[0] not in ("UP", None))
    if h.fault == "replica_partition" and down is not None:
        held = [
            (int(s[0]), _balancer(s, victim)[1])
            for s in _samples(h, down, h.healed_ns - int(float(limits["ack_stop_grace_s"]) * 1e9))
            if int(s[0]) >= down + int(float(limits["drain_grace_s"]) * 1e9) and (_balancer(s, victim)[1] or 0) > 0
        ]
        if held:
            t, n = held[0]
            out.append(
                Finding(
                    "error",
                    f"CLIENTS NOT MOVED: the balancer marked {victim} down, yet it still held {n} session(s)"
                    f" {_after(t, down)}s later",
                    "moved",
                    {"sessions": n},
                )
            )
    return out


def _balancer(sample: list[Any], service: str) -> tuple[str | None, int | None]:
    rows = sample[3] or {}
    row = rows.get(service)
    return (None, None) if row is None else (str(row[0]), int(row[1]))


def _replica(sample: list[Any], service: str) -> list[Any]:
    return list((sample[2] or {}).get(service) or [None, None, None])


def _first(h: ScenarioHistory, start: int, end: int, pred: Callable[[list[Any]], bool]) -> int | None:
    return next((int(s[0]) for s in _samples(h, start, end) if pred(s)), None)


def _bot_acked(sample: list[Any]) -> int | None:
    return None if sample[1] is None else int(sample[1][0])


def _acks_stop(h: ScenarioHistory, r: ScenarioResult, limits: Mapping[str, Any]) -> list[Finding]:
    """While Redis cannot take an append, nothing is acked: the bot's ``acked_seq`` does not
    rise from ``ack_stop_grace_s`` after the injection to as long before the heal (acks in
    flight may land first; a sample read while the heal ran may see it), though it kept producing; after the heal acks resume within ``recovery_bound_s``."""
    grace = int(float(limits["ack_stop_grace_s"]) * 1e9)
    held = [s for s in _samples(h, h.injected_ns + grace, h.healed_ns - grace) if s[1] is not None]
    out = []
    if len(held) < 2:
        return [Finding("error", "fewer than two samples of the bot while Redis was down: acks not measured", "acks")]
    acked = [int(s[1][0]) for s in held]
    produced = int(held[-1][1][1]) - int(held[0][1][1])
    r.extra.update(acked_during_fault=acked[-1] - acked[0], produced_during_fault=produced)
    if acked[-1] > acked[0]:
        rose = next(int(s[0]) for s in held if int(s[1][0]) > acked[0])
        out.append(
            Finding(
                "error",
                f"ACKED WITHOUT REDIS: the bot's acked_seq rose from {acked[0]} to {acked[-1]} while Redis"
                f" was down ({h.fault}), first {_after(rose, h.injected_ns)}s after the fault: those acks"
                " promise an append Redis never acknowledged",
                "acks_stop",
                {"from": acked[0], "to": acked[-1]},
            )
        )
    if produced <= 0:
        out.append(Finding("error", "the bot produced nothing while Redis was down: acks were not tested", "acks"))
    at_heal = acked[-1]
    bound = int(float(limits["recovery_bound_s"]) * 1e9)
    resumed = _first(h, h.healed_ns, h.healed_ns + bound, lambda s: (_bot_acked(s) or 0) > at_heal and s[1] is not None)
    final_acked = int(h.stat("final").get("acked_seq", 0))
    r.extra["acks_resumed_s"] = None if resumed is None else _after(resumed, h.healed_ns)
    if resumed is None and final_acked <= at_heal:
        out.append(
            Finding(
                "error",
                f"acks did not resume after the heal: acked_seq stayed at {at_heal}",
                "acks_resume",
            )
        )
    elif resumed is None:
        out.append(
            Finding(
                "error",
                f"acks resumed later than {limits['recovery_bound_s']}s after the heal",
                "acks_resume",
            )
        )
    return out


def log_accounts(entries: list[list[Any]]) -> tuple[set[int], SeqSet]:
    """Seqs the log holds, and those it declares dropped (gap envelopes' ranges)."""
    have: set[int] = set()
    gaps = SeqSet()
    for seq, _type, ranges in entries:
        have.add(int(seq))
        for a, b in ranges or []:
            gaps.add_range(int(a), int(b))
    return have, gaps


def _acked_in_log(h: ScenarioHistory, r: ScenarioResult, limits: Mapping[str, Any]) -> list[Finding]:
    """Acked means durable in the shared log: every seq of the run the bot saw acked, from the
    scenario's start to its end, is in the Redis stream after the fault (or declared dropped
    there by a gap). Read from Redis itself, after the restart of whatever crashed. Under
    ``appendfsync everysec`` (not the rig's default) a seq acked within
    ``everysec_loss_window_s`` before the fault may be missing: a warning with the count and
    span, as the durability contract says; any other missing seq is an error."""
    log = h.measured.get("log") or {}
    if not log.get("read"):
        return [Finding("error", f"the shared log could not be read: {log.get('error', 'not recorded')}", "log")]
    first = int(h.stat("start").get("last_seq", 0)) + 1
    seen = [_bot_acked(s) for s in h.measured.get("samples", [])]
    ends = [int(h.stat(k).get("acked_seq", 0)) for k in ("before", "during", "after", "final")]
    acked = max([a for a in seen if a is not None] + ends)
    entries = [list(e) for e in log.get("entries", [])]
    have, gaps = log_accounts(entries)
    missing = [s for s in range(first, acked + 1) if s not in have and s not in gaps]
    twice = sorted(s for s, n in Counter(int(e[0]) for e in entries).items() if n > 1)
    r.extra.update(log_entries=len(entries), acked_checked=max(0, acked - first + 1), acked_not_in_log=len(missing))
    out = []
    if acked < first:
        out.append(Finding("error", "nothing was acked during the scenario: durability was not tested", "log"))
    if missing and log.get("appendfsync") == "everysec":
        # docs/CLUSTER.md's contract: under everysec a crash may lose what was acked in the
        # last ``everysec_loss_window_s`` before Redis died; said, counted, never silent.
        window = int(float(limits["everysec_loss_window_s"]) * 1e9)
        acked_at = _acked_at(h)
        allowed = [m for m in missing if h.injected_ns - window <= acked_at.get(m, 0) <= h.injected_ns]
        if allowed:
            span = (max(acked_at[m] for m in allowed) - min(acked_at[m] for m in allowed)) / 1e9
            out.append(
                Finding(
                    "warning",
                    f"appendfsync everysec: {len(allowed)} seq(s) acked within {limits['everysec_loss_window_s']}s"
                    f" before Redis died are not in the log (over {span:.2f}s): the policy allows it, always would not",
                    "acked_in_log",
                    {"lost_under_everysec": len(allowed), "span_s": round(span, 2)},
                )
            )
            missing = [m for m in missing if m not in set(allowed)]
            r.extra["acked_lost_under_everysec"] = len(allowed)
    if missing:
        out.append(
            Finding(
                "error",
                f"ACKED BUT NOT IN THE LOG: {len(missing)} seq(s) of run {h.run_id[:8]} the bot saw acked"
                f" (up to {acked}) are not in the shared log after the {h.fault}: seqs {examples(missing)}",
                "acked_in_log",
                {"missing": len(missing), "acked": acked, "appendfsync": log.get("appendfsync")},
            )
        )
    if twice:
        out.append(
            Finding(
                "error",
                f"APPENDED TWICE: {len(twice)} seq(s) of run {h.run_id[:8]} are in the log more than once:"
                f" seqs {examples(twice)} (the append is idempotent by (run_id, seq))",
                "log_idempotent",
            )
        )
    return out


def _acked_at(h: ScenarioHistory) -> dict[int, int]:
    """When the bot first saw each seq acked (the sample that read it), epoch ns."""
    out: dict[int, int] = {}
    top = 0
    for sample in h.measured.get("samples", []):
        acked = _bot_acked(sample)
        if acked is not None and acked > top:
            out.update(dict.fromkeys(range(top + 1, acked + 1), int(sample[0])))
            top = acked
    return out


def _replica_drained(h: ScenarioHistory, r: ScenarioResult, limits: Mapping[str, Any]) -> list[Finding]:
    """A replica cut from Redis stops serving: its own /ready fails within
    ``ready_fail_bound_s``, the balancer marks it down within ``drain_bound_s``, its own
    acked_seq of the run does not rise from ``ack_stop_grace_s`` after the cut to as long
    before the heal; after the heal it is UP
    again within ``rejoin_bound_s``."""
    victim = str(h.measured.get("victim", ""))
    out = []
    grace = int(float(limits["ack_stop_grace_s"]) * 1e9)
    not_ready = _first(h, h.injected_ns, h.healed_ns, lambda s: _replica(s, victim)[0] not in (200, None))
    r.extra["victim_not_ready_s"] = None if not_ready is None else _after(not_ready, h.injected_ns)
    bound = float(limits["ready_fail_bound_s"])
    if not_ready is None or (not_ready - h.injected_ns) / 1e9 > bound:
        held = _after(h.healed_ns if not_ready is None else not_ready, h.injected_ns)
        out.append(
            Finding(
                "error",
                f"REPLICA SERVES WITHOUT REDIS: {victim}'s /ready still answered 200 {held}s after it was cut"
                f" from Redis (bound {bound:g}s)",
                "ready_fails",
                {"victim": victim},
            )
        )
    down = _first(h, h.injected_ns, h.healed_ns, lambda s: _balancer(s, victim)[0] not in ("UP", None))
    r.extra["victim_down_s"] = None if down is None else _after(down, h.injected_ns)
    drain = float(limits["drain_bound_s"])
    if down is None or (down - h.injected_ns) / 1e9 > drain:
        out.append(
            Finding(
                "error",
                f"NOT DRAINED: the balancer did not mark {victim} down within {drain:g}s of its cut from Redis",
                "drained",
            )
        )
    acked = [
        int(_replica(s, victim)[1])
        for s in _samples(h, h.injected_ns + grace, h.healed_ns - grace)
        if _replica(s, victim)[1] is not None
    ]
    if acked and acked[-1] > acked[0]:
        out.append(
            Finding(
                "error",
                f"REPLICA SERVES WITHOUT REDIS: {victim} acked the run from seq {acked[0]} to {acked[-1]}"
                " while cut from Redis",
                "acks_stop",
                {"from": acked[0], "to": acked[-1]},
            )
        )
    if not h.measured.get("victim_held_publisher"):
        out.append(
            Finding("warning", f"the bot's publisher was not on {victim}: its acks while cut were not tested", "acks")
        )
    out += _rejoined(h, r, limits)
    return out


def _rejoined(h: ScenarioHistory, r: ScenarioResult, limits: Mapping[str, Any]) -> list[Finding]:
    """The hit replica is UP in the balancer again within ``rejoin_bound_s`` of the heal."""
    victim = str(h.measured.get("victim", ""))
    end = h.healed_ns + int(float(limits["rejoin_bound_s"]) * 1e9)
    up = _first(h, h.healed_ns, end, lambda s: _balancer(s, victim)[0] == "UP")
    r.extra["victim_up_s"] = None if up is None else _after(up, h.healed_ns)
    if up is None:
        return [
            Finding(
                "error",
                f"NOT REJOINED: {victim} was not UP in the balancer within {limits['rejoin_bound_s']}s of the heal",
                "rejoined",
            )
        ]
    return []


def _every_replica_restarted(h: ScenarioHistory, r: ScenarioResult, limits: Mapping[str, Any]) -> list[Finding]:
    """The rolling restart restarted every replica, each UP again before the next."""
    done = [str(x[0]) for x in h.measured.get("restarted", [])]
    want = [str(s) for s in h.measured.get("replicas", [])]
    r.extra["replicas_restarted"] = len(done)
    missing = [s for s in want if s not in done]
    if not want or missing:
        return [
            Finding(
                "error",
                f"the rolling restart did not restart {', '.join(missing) or 'any replica'}: not tested",
                "rolling",
            )
        ]
    return []


#: The cluster scenarios' promises (named in ``ScenarioHistory.promises``; ``scenario_judge.PROMISES``).
CLUSTER_PROMISES: dict[str, Promise] = {
    "fleet_whole": _fleet_whole,
    "clients_moved": _clients_moved,
    "acks_stop": _acks_stop,
    "acked_in_log": _acked_in_log,
    "replica_drained": _replica_drained,
    "rejoined": _rejoined,
    "every_replica_restarted": _every_replica_restarted,
}
