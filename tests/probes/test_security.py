"""Security stage: auth, origin, size and rate limits, handshake timeout, hostile input,
a hypothesis fuzz, floods, and container hardening.

Every case is recorded as a scenario with ``expected`` and ``observed`` (close code or
HTTP status, and the counter that must move), so the report can show each one; a case
that fails adds an error finding that starts with the name of the protection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from collections import Counter
from typing import Any

import pytest
import requests
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConcurrencyError, ConnectionClosed, InvalidStatus

from wsrig import hostile, messages
from wsrig.clients import Publisher, Subscriber, get_json
from wsrig.flood import start_flood_process
from wsrig.hardening import hardening_problems, summarize
from wsrig.looplag import watch_loop
from wsrig.probe import backend_status, conclude, progress, run, timing_verdict
from wsrig.righealth import ProcessHealth, RigHealth
from wsrig.stack import DockerStack
from wsrig.stats import LatencySummary

pytestmark = pytest.mark.security


# --- helpers -----------------------------------------------------------------------------


def _counters(cfg) -> dict[str, Any]:
    return dict(backend_status(cfg)["counters"])


def _delta(before: dict[str, Any], after: dict[str, Any], key: str) -> int:
    return int(after.get(key, 0)) - int(before.get(key, 0))


def _case(record, name: str, expected: Any, observed: Any, problems: list[str], **fields: Any) -> None:
    """Record one case (expected vs observed); each problem becomes an error finding."""
    findings = [{"severity": "error", "message": p} for p in problems]
    fields.setdefault("status", "failed" if problems else "passed")
    record.scenario(
        name,
        not problems and fields["status"] == "passed",
        expected=expected,
        observed=observed,
        findings=findings,
        **fields,
    )
    for p in problems:
        record.finding("error", p)


def _assert_cases(record, names: list[str]) -> None:
    failed = [s for s in record.scenarios if s["name"] in names and not s["passed"]]
    assert not failed, "; ".join(f["message"] for s in failed for f in s["findings"])


async def _handshake_status(url: str, **kw: Any) -> int:
    """HTTP status of a WebSocket handshake: 101 when it opened, else the refusal's status."""
    try:
        async with connect(url, open_timeout=10, **kw):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def _close_code(ws: ClientConnection, timeout: float = 10) -> int | None:
    """The code the backend closed ``ws`` with, reading and dropping frames until then."""
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        async with asyncio.timeout(timeout):
            try:
                while True:
                    await ws.recv()
            except ConcurrencyError:  # another task reads it (a Publisher's ack reader)
                await ws.wait_closed()
    return ws.close_code


def _bot_latencies(sub: Subscriber, run_id: str, since_ns: int = 0) -> list[float]:
    return [(recv - f["ts_ns"]) / 1e6 for recv, f in sub.frames if f.get("run_id") == run_id and recv >= since_ns]


async def _latency_window(sub: Subscriber, run_id: str, seconds: float) -> LatencySummary:
    t0 = time.time_ns()
    await asyncio.sleep(seconds)
    return LatencySummary.from_ms(_bot_latencies(sub, run_id, t0))


# --- publisher authentication ----------------------------------------------------------------


def test_publisher_token_required(cfg, record):
    """A hello with a missing or wrong token is closed 1008 and counted; no secret reaches the log."""
    wrong = "wrong-token-" + messages.new_run_id("t")[-12:]
    cases = {
        "auth_missing_token": {k: v for k, v in messages.hello(messages.new_run_id(), "x").items() if k != "auth"},
        "auth_wrong_token": messages.hello(messages.new_run_id(), wrong),
    }
    for name, hello in cases.items():
        before = _counters(cfg)

        async def body(frame: dict = hello) -> int | None:
            async with connect(cfg.ingest_url, open_timeout=10) as ws:
                await ws.send(json.dumps(frame))
                return await _close_code(ws)

        code = run(body())
        counted = _delta(before, _counters(cfg), "auth_failures")
        problems = []
        if code != 1008:
            problems.append(f"token check: {name}: expected close 1008, got {code}")
        if counted != 1:
            problems.append(f"token check: {name}: auth_failures rose by {counted}, expected 1")
        _case(record, name, "close 1008, auth_failures +1", f"close {code}, auth_failures +{counted}", problems)

    logs = DockerStack(cfg).logs(cfg.dashboard_service)
    leaked = [
        label
        for label, secret in (("the configured token", cfg.auth_token), ("a wrong token", wrong))
        if secret and secret in logs
    ]
    _case(
        record,
        "secrets_not_logged",
        "neither the configured token nor a presented one in the backend's log",
        "leaked: " + ", ".join(leaked) if leaked else "none found",
        [f"token check: {x} appears in the backend's log" for x in leaked],
    )
    _assert_cases(record, [*cases, "secrets_not_logged"])


# --- origin -----------------------------------------------------------------------------------


def test_origin_check(cfg, record, limits):
    """A foreign Origin is refused (403) on both endpoints and counted; allowed and missing Origins pass."""
    allowed = [o.strip() for o in cfg.setting("SYSTEM__ALLOWED_ORIGINS").split(",") if o.strip()]
    allow_missing = cfg.setting("SYSTEM__ALLOW_MISSING_ORIGIN", "true").lower() in ("1", "true", "yes", "on")
    evil = str(limits["origin_rejected_probe"])
    if not allowed:
        _case(
            record,
            "origin_check",
            "an Origin allow-list (SYSTEM__ALLOWED_ORIGINS)",
            "none configured",
            ["origin check: no allow-list configured (SYSTEM__ALLOWED_ORIGINS is empty): any web page may connect"],
        )
        _assert_cases(record, ["origin_check"])
    names = []
    for path, url in (("/ws/stream", cfg.stream_url), ("/ws", cfg.ingest_url)):
        before = _counters(cfg)
        status = run(_handshake_status(url, origin=evil))
        counted = _delta(before, _counters(cfg), "origin_rejected")
        problems = []
        if status != 403:
            problems.append(f"origin check: Origin {evil} on {path} got HTTP {status}, expected 403")
        if counted != 1:
            problems.append(f"origin check: origin_rejected rose by {counted} for {path}, expected 1")
        name = f"origin_rejected_{path.strip('/').replace('/', '_')}"
        names.append(name)
        _case(record, name, "HTTP 403, origin_rejected +1", f"HTTP {status}, origin_rejected +{counted}", problems)
    status = run(_handshake_status(cfg.stream_url, origin=allowed[0]))
    names.append("origin_allowed")
    _case(
        record,
        "origin_allowed",
        f"HTTP 101 for Origin {allowed[0]}",
        f"HTTP {status}",
        [] if status == 101 else [f"origin check: allowed Origin {allowed[0]} got HTTP {status}"],
    )
    status = run(_handshake_status(cfg.stream_url))
    want = 101 if allow_missing else 403
    names.append("origin_missing")
    _case(
        record,
        "origin_missing",
        f"HTTP {want} with no Origin (SYSTEM__ALLOW_MISSING_ORIGIN={str(allow_missing).lower()})",
        f"HTTP {status}",
        [] if status == want else [f"origin check: no Origin got HTTP {status}, policy says {want}"],
    )
    _assert_cases(record, names)


# --- frame size ---------------------------------------------------------------------------------


def test_frame_size_limit(cfg, record):
    """A frame over SYSTEM__MAX_FRAME_BYTES closes the connection with 1009 and is counted."""
    limit = int(cfg.setting("SYSTEM__MAX_FRAME_BYTES", "1048576"))
    before = _counters(cfg)

    async def body() -> int | None:
        async with Publisher(cfg.ingest_url, cfg.auth_token) as pub:
            assert pub.ws is not None
            data = dict(messages.SAMPLE_DATA["market_data"], padding="x" * (limit + 1024))
            with contextlib.suppress(ConnectionClosed):
                await pub.ws.send(json.dumps(messages.envelope(pub.run_id, 1, "market_data", data)))
            return await _close_code(pub.ws)

    code = run(body())
    time.sleep(0.3)
    counted = _delta(before, _counters(cfg), "oversize_closes")
    problems = []
    if code != 1009:
        problems.append(f"size limit: a frame of {limit + 1024}+ bytes got close {code}, expected 1009 (limit {limit})")
    if counted != 1:
        problems.append(f"size limit: oversize_closes rose by {counted}, expected 1")
    _case(record, "size_limit", "close 1009, oversize_closes +1", f"close {code}, oversize_closes +{counted}", problems)
    _assert_cases(record, ["size_limit"])


# --- invalid input -----------------------------------------------------------------------------------


def test_invalid_input_gets_error_frames(cfg, record):
    """Each kind of invalid frame gets an error frame with its code and a counter; the connection stays up."""

    def env(run_id: str, seq: Any, **over: Any) -> dict[str, Any]:
        e = messages.envelope(run_id, 1, "trade")
        e["seq"] = seq
        e.update(over)
        return e

    status_before = backend_status(cfg)

    async def body() -> tuple[list[tuple[str, str, str | None, int]], int, int]:
        out = []
        async with Publisher(cfg.ingest_url, cfg.auth_token) as pub:
            r = pub.run_id
            missing = env(r, 101)
            del missing["ts_ns"]
            cases: list[tuple[str, str | bytes, str]] = [
                ("invalid_json", "{not json", "invalid_json"),
                ("not_an_object", "[1, 2, 3]", "not_an_object"),
                (
                    "wrong_type",
                    json.dumps(env(r, 102, data={**messages.SAMPLE_DATA["trade"], "price": "cheap"})),
                    "schema_violation",
                ),
                ("missing_field", json.dumps(missing), "schema_violation"),
                ("unknown_type", json.dumps(env(r, 103, type="launch_missiles")), "unknown_type"),
                ("negative_seq", json.dumps(env(r, -5)), "schema_violation"),
                ("absurd_seq", json.dumps(env(r, 2**64)), "schema_violation"),
                ("float_seq", json.dumps(env(r, 1.5)), "schema_violation"),
                ("non_utf8_binary", b'\xff\xfe{"v": 1}', "invalid_json"),
                ("run_mismatch", json.dumps(env("another-run-0000", 104)), "run_mismatch"),
            ]
            for name, payload, want in cases:
                before = await asyncio.to_thread(_counters, cfg)
                n = len(pub.errors)
                await pub.send_raw(payload)
                try:
                    await pub.wait_for(lambda p, n=n: len(p.errors) > n, 10, f"error frame for {name}")
                    got = pub.errors[n].get("code")
                except (TimeoutError, ConnectionError):
                    got = None
                after = await asyncio.to_thread(_counters, cfg)
                counted = int((after.get("rejected_by_code") or {}).get(want, 0)) - int(
                    (before.get("rejected_by_code") or {}).get(want, 0)
                )
                out.append((name, want, got, counted))
            # Still up: a valid trade is stored and acked.
            sent = await pub.publish("trade", dict(messages.SAMPLE_DATA["trade"], trade_id="after-invalid"))
            try:
                await pub.wait_ack(sent["seq"], timeout=10)
                acked = 1
            except (TimeoutError, ConnectionError):
                acked = 0
            stored = len(get_json(f"{cfg.dashboard_url}/api/events?run_id={r}")["events"])
            return out, acked, stored

    results, acked, stored = run(body())
    letters = hostile.check_dead_letters(Counter(want for _, want, _, _ in results), status_before, backend_status(cfg))
    _case(
        record,
        "invalid_dead_lettered",
        "every rejected frame in the dead-letter store, by code",
        "; ".join(letters) or "all dead-lettered",
        [f"invalid input: {p}" for p in letters],
    )
    names = ["invalid_dead_lettered"]
    for name, want, got, counted in results:
        problems = []
        if got != want:
            problems.append(f"invalid input: {name}: expected error {want}, got {got or 'no error frame'}")
        if counted != 1:
            problems.append(f"invalid input: {name}: rejected_by_code.{want} rose by {counted}, expected 1")
        names.append(f"invalid_{name}")
        _case(record, f"invalid_{name}", f"error {want}, counter +1", f"error {got}, counter +{counted}", problems)
    problems = []
    if not acked:
        problems.append("invalid input: the connection did not stay up (a valid trade after them was not acked)")
    if stored != 1:
        problems.append(f"invalid input: {stored} envelope(s) stored for the run, expected only the 1 valid one")
    names.append("invalid_connection_stays_up")
    _case(
        record,
        "invalid_connection_stays_up",
        "the next valid trade acked; only it stored",
        f"acked={bool(acked)}, stored={stored}",
        problems,
    )
    _assert_cases(record, names)


def test_invalid_utf8_text_frame_closes_1007(cfg, record):
    """A text frame that is not UTF-8 breaks RFC 6455: close 1007, counted."""
    before = _counters(cfg)

    async def body() -> int | None:
        async with Publisher(cfg.ingest_url, cfg.auth_token) as pub:
            assert pub.ws is not None
            await pub.ws.send(b"\xff\xfe not utf-8", text=True)
            return await _close_code(pub.ws)

    code = run(body())
    time.sleep(0.3)
    counted = _delta(before, _counters(cfg), "invalid_utf8_closes")
    problems = []
    if code != 1007:
        problems.append(f"invalid input: non-UTF-8 text frame got close {code}, expected 1007")
    if counted != 1:
        problems.append(f"invalid input: invalid_utf8_closes rose by {counted}, expected 1")
    _case(record, "invalid_utf8_text", "close 1007, invalid_utf8_closes +1", f"close {code}, +{counted}", problems)
    _assert_cases(record, ["invalid_utf8_text"])


def test_bad_subscribe_gets_error_and_default(cfg, record):
    """An invalid subscribe gets error bad_subscribe (counted), then the default subscription's snapshot."""
    before = _counters(cfg)

    async def body() -> tuple[list[str], int | None]:
        async with connect(cfg.stream_url, open_timeout=10) as ws:
            await ws.send(json.dumps({"type": "subscribe", "types": ["nonsense"], "resume": {"run_id": 5}}))
            kinds = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    while len(kinds) < 2:
                        frame = json.loads(await ws.recv())
                        kinds.append(frame.get("code") or frame.get("type"))
            return kinds, ws.close_code

    kinds, code = run(body())
    counted = _delta(before, _counters(cfg), "bad_subscribe")
    problems = []
    if kinds[:2] != ["bad_subscribe", "snapshot"]:
        problems.append(f"invalid input: bad subscribe: expected error bad_subscribe then a snapshot, got {kinds}")
    if counted != 1:
        problems.append(f"invalid input: bad_subscribe rose by {counted}, expected 1")
    _case(
        record, "bad_subscribe", "error bad_subscribe, snapshot, counter +1", f"{kinds}, counter +{counted}", problems
    )
    _assert_cases(record, ["bad_subscribe"])


# --- handshake timeout ---------------------------------------------------------------------------------


def test_handshake_timeout(cfg, record, limits):
    """TCP with no upgrade, a half-sent upgrade, and an upgrade with no hello are dropped in time and counted."""
    timeout = float(cfg.setting("SYSTEM__HANDSHAKE_TIMEOUT", "10"))
    bound = timeout + float(limits["handshake_timeout_slack_s"])
    host, port = cfg.dashboard_url.split("//", 1)[1].split(":")

    async def silent(partial: bytes) -> float | None:
        reader, writer = await asyncio.open_connection(host, int(port))
        t0 = time.monotonic()
        if partial:
            writer.write(partial)
        try:
            async with asyncio.timeout(bound + 5):
                while await reader.read(4096):
                    pass
            return time.monotonic() - t0
        except TimeoutError:
            return None
        finally:
            writer.close()

    async def no_hello() -> tuple[int | None, float]:
        t0 = time.monotonic()
        async with connect(cfg.ingest_url, open_timeout=10) as ws:
            code = await _close_code(ws, bound + 5)
        return code, time.monotonic() - t0

    names = []
    for name, partial in (
        ("handshake_silent_tcp", b""),
        ("handshake_partial_upgrade", b"GET /ws/stream HTTP/1.1\r\nHost: x\r\n"),
    ):
        before = _counters(cfg)
        took = run(silent(partial))
        counted = _delta(before, _counters(cfg), "handshake_timeouts")
        problems = []
        if took is None or took > bound:
            problems.append(
                f"handshake timeout: {name}: still open after {bound:.0f}s (SYSTEM__HANDSHAKE_TIMEOUT={timeout:g})"
            )
        if counted != 1:
            problems.append(f"handshake timeout: {name}: handshake_timeouts rose by {counted}, expected 1")
        names.append(name)
        _case(
            record,
            name,
            f"dropped within {bound:g}s, handshake_timeouts +1",
            f"dropped after {took:.2f}s, +{counted}" if took is not None else f"not dropped, +{counted}",
            problems,
        )
    before = _counters(cfg)
    code, took = run(no_hello())
    counted = _delta(before, _counters(cfg), "handshake_timeouts")
    problems = []
    if code != 1008 or took > bound:
        problems.append(
            f"handshake timeout: a publisher with no hello got close {code} after {took:.1f}s (bound {bound:g}s)"
        )
    if counted != 1:
        problems.append(f"handshake timeout: no hello: handshake_timeouts rose by {counted}, expected 1")
    names.append("handshake_no_hello")
    _case(
        record,
        "handshake_no_hello",
        f"close 1008 within {bound:g}s, +1",
        f"close {code} after {took:.2f}s, +{counted}",
        problems,
    )
    _assert_cases(record, names)


# --- connection limit and client rate ---------------------------------------------------------------------


def test_connection_limit(cfg, record):
    """At SYSTEM__MAX_CONNECTIONS open WebSockets the next handshake gets 503 (counted); a freed slot is reused."""
    limit = int(cfg.setting("SYSTEM__MAX_CONNECTIONS", "1000"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < limit + 200 and hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, limit + 1000), hard))
    before = _counters(cfg)
    quiet = json.dumps(messages.subscribe(types=[], snapshot=False))

    async def body() -> tuple[int, int | None, int, int]:
        status = await asyncio.to_thread(backend_status, cfg)
        live = int(status["publisher_count"]) + int(status["client_count"])
        opened: list[ClientConnection] = []
        refused_at: int | None = None
        try:
            while refused_at is None and len(opened) < limit + 10:
                batch = min(50, limit + 10 - len(opened))
                results = await asyncio.gather(
                    *(connect(cfg.stream_url, open_timeout=15, ping_interval=None) for _ in range(batch)),
                    return_exceptions=True,
                )
                refused = False
                for r in results:
                    if isinstance(r, ClientConnection):
                        opened.append(r)
                        await r.send(quiet)
                    elif isinstance(r, InvalidStatus) and r.response.status_code == 503:
                        refused = True
                    elif isinstance(r, BaseException):
                        raise r
                if refused:  # the batch ran concurrently: count what it opened in all
                    refused_at = len(opened)
            progress(f"connection limit: {len(opened)} opened on top of {live}, refused after {refused_at}")
            n_open = len(opened)
            await opened.pop().close()
            await asyncio.sleep(0.5)
            reused = await _handshake_status(cfg.stream_url)
            return live, refused_at, n_open, reused
        finally:
            await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)

    live, refused_at, n_open, reused = run(body())
    counted = _delta(before, _counters(cfg), "connections_refused")
    problems = []
    if refused_at is None:
        problems.append(f"connection limit: {n_open} extra connections (on top of {live}) all accepted; limit {limit}")
    elif not limit - 5 <= live + refused_at <= limit:
        problems.append(f"connection limit: refused with {live + refused_at} connections open, limit is {limit}")
    if counted < 1:
        problems.append("connection limit: connections_refused did not rise")
    if reused != 101:
        problems.append(f"connection limit: a freed slot was not reused (HTTP {reused})")
    _case(
        record,
        "connection_limit",
        f"HTTP 503 at {limit} open connections, connections_refused +1, freed slot reusable",
        f"refused at {live + refused_at if refused_at is not None else 'never'}, +{counted}, reuse HTTP {reused}",
        problems,
    )
    _assert_cases(record, ["connection_limit"])


def test_client_rate_limit(cfg, record):
    """A /ws/stream client sending over its frame rate is closed 1008 and counted."""
    rate = float(cfg.setting("SYSTEM__CLIENT_MAX_MSGS_PER_S", "20"))
    burst = int(cfg.setting("SYSTEM__CLIENT_MSG_BURST", "50"))
    before = _counters(cfg)

    async def body() -> tuple[int | None, int]:
        sent = 0
        async with connect(cfg.stream_url, open_timeout=10) as ws:
            await ws.send(json.dumps(messages.subscribe(types=[], snapshot=False)))
            with contextlib.suppress(ConnectionClosed):
                for _ in range(20 * burst):
                    await ws.send("flood")
                    sent += 1
            return await _close_code(ws), sent

    code, sent = run(body())
    time.sleep(0.3)
    counted = _delta(before, _counters(cfg), "rate_limit_closes")
    problems = []
    if code != 1008:
        problems.append(
            f"rate limit: a client sending {sent} frames at once got close {code}, expected 1008 (rate {rate:g}/s, burst {burst})"
        )
    if counted != 1:
        problems.append(f"rate limit: rate_limit_closes rose by {counted}, expected 1")
    _case(
        record,
        "client_rate_limit",
        "close 1008, rate_limit_closes +1",
        f"close {code} after {sent} frames, +{counted}",
        problems,
    )
    _assert_cases(record, ["client_rate_limit"])


# --- fuzz ---------------------------------------------------------------------------------------------------


def _stored(cfg, path: str, run_id: str, key: str) -> list[dict[str, Any]]:
    return list(get_json(f"{cfg.dashboard_url}{path}?run_id={run_id}&limit=1000000", timeout=30)[key])


def test_fuzz(cfg, record, limits, rig_limits, bot_run_id):
    """>= N hypothesis-generated hostile frames to /ws and /ws/stream: healthy after, counters add up,
    exactly the valid messages stored, nothing else changed, a normal client's latency within threshold."""
    n_pub = int(limits["fuzz_publisher_frames"])
    n_conns = int(limits["fuzz_stream_connections"])
    seed_value = int(limits["fuzz_seed"])
    settle = float(limits["fuzz_settle_s"])
    p99_max = float(limits["client_p99_ms"])
    stack = DockerStack(cfg)

    t0 = time.monotonic()
    pub_specs = hostile.generate_specs(hostile.publisher_specs(), n_pub, seed_value)
    conn_specs = hostile.generate_specs(hostile.stream_specs(), n_conns, seed_value + 1, batch=5)
    # Render and judge every frame before connecting: the event loop must stay free to
    # answer the backend's pings and to read the normal client while the fuzz is sent.
    run_id = messages.new_run_id("fuzz")
    tally = hostile.FuzzTally(run_id)
    pub_frames = [hostile.render(spec, run_id, seq) for seq, spec in enumerate(pub_specs, 1)]
    # Error frames the backend owes after each frame: the sender keeps at most one batch
    # unanswered (a publisher far ahead of the backend has its pongs queued behind its
    # own frames and is cut by the keepalive, 1011; see docs/SECURITY.md).
    owed = []
    for frame in pub_frames:
        tally.publisher_frame(frame)
        owed.append(sum(tally.rejected_by_code.values()))
    conn_frames = [[hostile.render(s, "fuzz-stream", 0) for s in specs] for specs in conn_specs]
    for frames in conn_frames:
        tally.stream_connection(frames)
    gen_s = time.monotonic() - t0
    progress(
        f"fuzz: generated {len(pub_specs)} publisher frames and {len(conn_specs)} stream connections in {gen_s:.1f}s"
    )

    container = stack.container(cfg.dashboard_service)
    started_before = container.attrs["State"]["StartedAt"]
    bot_events_before = _stored(cfg, "/api/events", bot_run_id, "events")
    status_before = backend_status(cfg)
    before = dict(status_before["counters"])
    runs_before = set(status_before["runs"])

    async def body() -> dict[str, Any]:
        async with Subscriber(cfg.stream_url, messages.subscribe(snapshot=False)) as normal:
            async with Publisher(cfg.ingest_url, cfg.auth_token, run_id) as pub:
                assert pub.ws is not None
                t_fuzz = time.monotonic()
                batch = 200
                for start in range(0, len(pub_frames), batch):
                    for frame in pub_frames[start : start + batch]:
                        await pub.ws.send(frame.payload, text=not frame.binary)
                    await asyncio.sleep(0)
                    want = owed[start - 1] if start else 0  # everything before this batch answered
                    try:
                        await pub.wait_for(lambda p, w=want: len(p.errors) >= w, 10, "the backend to catch up")
                    except (TimeoutError, ConnectionError):
                        break  # the checks below say what went wrong
                progress(f"fuzz: {len(pub_frames)} frames sent to /ws in {time.monotonic() - t_fuzz:.1f}s")
                sem = asyncio.Semaphore(10)
                stream_errors: list[str] = []

                async def one(frames: list[hostile.Frame]) -> None:
                    async with sem:
                        try:
                            async with connect(cfg.stream_url, open_timeout=15, max_size=None) as ws:
                                for f in frames:
                                    await ws.send(f.payload, text=not f.binary)
                        except Exception as exc:  # recorded: the counters will not add up either
                            stream_errors.append(f"{type(exc).__name__}: {exc}"[:200])

                await asyncio.gather(*(one(frames) for frames in conn_frames))
                fuzz_s = time.monotonic() - t_fuzz
                progress(f"fuzz: {tally.frames} frames in all after {fuzz_s:.1f}s; waiting for the backend to catch up")
                during = LatencySummary.from_ms(_bot_latencies(normal, bot_run_id))
                want_errors = sum(tally.rejected_by_code.values())
                with contextlib.suppress(TimeoutError, ConnectionError):
                    await pub.wait_for(lambda p: len(p.errors) >= want_errors, settle, "the fuzz's error frames")

                async def caught_up() -> bool:
                    c = (await asyncio.to_thread(backend_status, cfg))["counters"]
                    events = await asyncio.to_thread(_stored, cfg, "/api/events", pub.run_id, "events")
                    return (
                        _delta(before, c, "client_frames_ignored") >= tally.ignored
                        and _delta(before, c, "bad_subscribe") >= tally.bad_subscribe
                        and len(events) >= len(tally.critical)
                    )

                deadline = time.monotonic() + settle
                while time.monotonic() < deadline and not await caught_up():
                    await asyncio.sleep(0.5)
                errors_seen = Counter(str(e.get("code")) for e in pub.errors)
                closed_code = pub.close_code
            async with watch_loop("normal client") as lag:
                after_window = await _latency_window(normal, bot_run_id, float(limits["latency_window_s"]))
            return {
                "after_health": lag.health(),
                "errors_seen": errors_seen,
                "stream_errors": stream_errors,
                "fuzz_s": fuzz_s,
                "during": during,
                "after": after_window,
                "publisher_closed": closed_code,
                "run_id": run_id,
                "normal_closed": normal.close_code if normal.closed else None,
            }

    out = run(body())
    status_after = backend_status(cfg)
    after = dict(status_after["counters"])
    deltas = hostile.counter_deltas(before, after)
    problems = [f"fuzz: {p}" for p in hostile.check_counters(tally, deltas, out["errors_seen"])]
    problems += [f"fuzz: {p}" for p in hostile.check_dead_letters(tally.rejected_by_code, status_before, status_after)]
    if out["publisher_closed"] is not None:
        problems.append(
            f"fuzz: the fuzz publisher's connection was closed ({out['publisher_closed']}) although every frame fits the protocol"
        )
    problems += [f"fuzz: /ws/stream connection failed: {e}" for e in out["stream_errors"][:5]]
    try:
        healthy = requests.get(cfg.dashboard_url + "/health", timeout=5).status_code == 200
        ready = bool(get_json(cfg.dashboard_url + "/ready").get("ready"))
    except Exception as exc:
        healthy = ready = False
        problems.append(f"fuzz: backend unreachable after the fuzz: {exc}")
    if not (healthy and ready):
        problems.append(f"fuzz: backend not healthy after the fuzz (health={healthy}, ready={ready})")
    container.reload()
    if container.attrs["State"]["StartedAt"] != started_before or container.attrs["State"]["Status"] != "running":
        problems.append(f"fuzz: the backend container restarted or stopped ({container.attrs['State']['Status']})")
    events = _stored(cfg, "/api/events", out["run_id"], "events")
    trades = _stored(cfg, "/api/trades", out["run_id"], "trades")
    problems += [f"fuzz: {p}" for p in hostile.check_stored("/api/events", tally.critical, events)]
    problems += [f"fuzz: {p}" for p in hostile.check_stored("/api/trades", tally.trades, trades)]
    problems += [
        f"fuzz: {p}"
        for p in hostile.check_unchanged(
            f"bot run {bot_run_id[:8]}", bot_events_before, _stored(cfg, "/api/events", bot_run_id, "events")
        )
    ]
    new_runs = sorted(set(status_after["runs"]) - runs_before - {out["run_id"]})
    if new_runs:
        problems.append(f"fuzz: runs appeared that no hello opened: {new_runs[:5]}")
    after_lat: LatencySummary = out["after"]
    if after_lat.count == 0:
        problems.append("fuzz: the normal client received no bot envelope after the fuzz")
    rig = RigHealth((out["after_health"],))
    lag = rig.lagging(rig_limits)
    timing = []
    if after_lat.count and after_lat.p99 > p99_max:
        timing.append(f"fuzz: a normal client's P99 after the fuzz is {after_lat.p99} ms > {p99_max} ms")
    if out["normal_closed"] is not None:
        problems.append(f"fuzz: the normal client was disconnected ({out['normal_closed']})")

    record.measure("fuzz_frames", tally.frames, int(limits["fuzz_min_frames"]), op=">=")
    p99_check = record.measure("fuzz_client_p99_after_ms", after_lat.p99, p99_max, unit=" ms")
    status, invalid = timing_verdict(record, p99_check, problems, timing, lag, rig.worst_stall_ms)
    record.metrics["fuzz"] = tally.serialize()
    record.metrics["fuzz_counter_deltas"] = {
        k: deltas.get(k)
        for k in (
            "received",
            "unique",
            "rejected",
            "rejected_by_code",
            "bad_subscribe",
            "client_frames_ignored",
            "internal_errors",
            "publisher_throttled",
            "committed",
        )
    }
    expected = {
        "frames": tally.frames,
        "rejected_by_code": dict(tally.rejected_by_code),
        "bad_subscribe": tally.bad_subscribe,
        "client_frames_ignored": tally.ignored,
        "stored_events": len(tally.critical),
        "stored_trades": len(tally.trades),
        "internal_errors": 0,
        "healthy": True,
    }
    observed = {
        "rejected_by_code": deltas.get("rejected_by_code", {}),
        "error_frames": dict(out["errors_seen"]),
        "bad_subscribe": deltas.get("bad_subscribe", 0),
        "client_frames_ignored": deltas.get("client_frames_ignored", 0),
        "stored_events": len(events),
        "stored_trades": len(trades),
        "internal_errors": deltas.get("internal_errors", 0),
        "healthy": healthy and ready,
    }
    progress(
        f"fuzz: {tally.frames} frames, client P99 during {out['during'].p99} ms, after {after_lat.p99} ms; {len(problems)} problem(s)"
    )
    _case(
        record,
        "fuzz",
        expected,
        observed,
        problems,
        seed=seed_value,
        generate_s=round(gen_s, 1),
        fuzz_s=round(out["fuzz_s"], 1),
        frames=tally.frames,
        bytes=tally.bytes,
        latency_ms_during=out["during"].serialize(),
        latency_ms=after_lat.serialize(),
        status=status,
        invalid_reasons=invalid,
        rig_health=rig.serialize(),
    )
    assert tally.frames >= int(limits["fuzz_min_frames"]), f"only {tally.frames} fuzz frames"
    conclude(next(s for s in record.scenarios if s["name"] == "fuzz"))


# --- flood ---------------------------------------------------------------------------------------------------


def test_flood_does_not_hurt_other_clients(cfg, record, limits, rig_limits, bot_run_id):
    """One publisher connection and one client connection flood; another client's P99 stays in bounds.

    The normal client's own loop is watched: if it ran late, its P99 is partly the rig's
    and the latency gate is invalid (the correctness gates still judge).
    """
    flood_s = float(limits["flood_s"])
    window = float(limits["latency_window_s"])
    p99_max = float(limits["client_p99_ms"])
    before = _counters(cfg)
    # The flood runs in its own process, from the end of the baseline window on.
    start_at = time.time() + 2 + window
    proc, queue = start_flood_process(cfg.ingest_url, cfg.stream_url, cfg.auth_token, flood_s, start_at)

    async def body() -> tuple[Subscriber, dict[str, Any], ProcessHealth]:
        async with (
            watch_loop("normal client") as lag,
            Subscriber(cfg.stream_url, messages.subscribe(snapshot=False)) as normal,
        ):
            await asyncio.sleep(max(0.0, start_at - time.time()) + flood_s + 1)
            result = await asyncio.to_thread(queue.get, True, 60)
            result["normal_closed"] = normal.close_code if normal.closed else None
        return normal, result, lag.health()

    try:
        normal, result, normal_health = run(body())
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    assert "error" not in result, f"flood process failed: {result.get('error')}"
    time.sleep(0.3)
    after = _counters(cfg)
    throttled = _delta(before, after, "publisher_throttled")
    rate_closes = _delta(before, after, "rate_limit_closes")
    start_ns = int(start_at * 1e9)
    baseline = LatencySummary.from_ms(
        [
            (r - f["ts_ns"]) / 1e6
            for r, f in normal.frames
            if f.get("run_id") == bot_run_id and start_ns - window * 1e9 <= r < start_ns
        ]
    )
    during = LatencySummary.from_ms(
        [
            (r - f["ts_ns"]) / 1e6
            for r, f in normal.frames
            if f.get("run_id") == bot_run_id and result["start_ns"] <= r <= result["end_ns"]
        ]
    )
    problems = []
    timing = []
    if during.count == 0:
        problems.append("flood: the normal client received no bot envelope during the flood")
    elif during.p99 > p99_max:
        timing.append(
            f"flood: a normal client's P99 rose from {baseline.p99} ms to {during.p99} ms during the flood (> {p99_max} ms)"
        )
    rig = RigHealth((normal_health,))
    lag = rig.lagging(rig_limits)
    if result["normal_closed"] is not None:
        problems.append(f"flood: the normal client was disconnected ({result['normal_closed']})")
    if result["client_close"] != 1008 or rate_closes != 1:
        problems.append(
            f"rate limit: the flooding client got close {result['client_close']} (rate_limit_closes +{rate_closes}), expected 1008 and +1"
        )
    if result["publisher_close"] not in (None, 1011):
        problems.append(
            f"flood: the flooding publisher was closed with {result['publisher_close']}; the policy is to throttle it"
        )
    if throttled == 0:
        record.finding(
            "warning",
            f"flood: the publisher flood ({result['publisher_frames']} frames in {flood_s:g}s) never hit SYSTEM__PUBLISHER_MAX_MSGS_PER_S: the throttle was not exercised",
        )
    p99_check = record.measure("flood_client_p99_ms", during.p99, p99_max, unit=" ms")
    status, invalid = timing_verdict(record, p99_check, problems, timing, lag, rig.worst_stall_ms)
    record.metrics["flood_effect_p99_ms"] = round(during.p99 - baseline.p99, 3)
    progress(
        f"flood: normal client P99 {baseline.p99} ms -> {during.p99} ms; publisher sent {result['publisher_frames']} "
        f"(throttled {throttled}x, close {result['publisher_close']}), client sent {result['client_frames']} (close {result['client_close']})"
    )
    _case(
        record,
        "flood",
        f"normal client P99 <= {p99_max} ms; flooding client closed 1008; flooding publisher throttled (or cut by the keepalive, 1011)",
        {
            "p99_baseline_ms": baseline.p99,
            "p99_during_ms": during.p99,
            "publisher_frames": result["publisher_frames"],
            "publisher_throttled": throttled,
            "publisher_close": result["publisher_close"],
            "client_frames": result["client_frames"],
            "client_close": result["client_close"],
            "rate_limit_closes": rate_closes,
        },
        problems,
        status=status,
        invalid_reasons=invalid,
        rig_health=rig.serialize(),
        latency_ms_baseline=baseline.serialize(),
        latency_ms=during.serialize(),
    )
    conclude(next(s for s in record.scenarios if s["name"] == "flood"))


# --- container hardening ---------------------------------------------------------------------------------------


def test_container_hardening(cfg, record):
    """Every service container: non-root, read-only root, no added capabilities, no-new-privileges, loopback ports."""
    stack = DockerStack(cfg)
    names = []
    for service in (cfg.dashboard_service, cfg.bot_service, cfg.proxy_service):
        container = stack.container(service)
        container.reload()
        problems = [f"hardening: {service}: {p}" for p in hardening_problems(container.attrs)]
        try:
            top = container.top()
            col = top["Titles"].index("UID")
            root_procs = [p for p in top["Processes"] if p[col] in ("root", "0")]
            if root_procs:
                problems.append(f"hardening: {service}: {len(root_procs)} process(es) run as root")
        except Exception as exc:  # top is informative; the inspect rules above are the check
            record.finding("warning", f"hardening: {service}: docker top failed: {exc}")
        name = f"hardening_{service}"
        names.append(name)
        _case(
            record,
            name,
            "non-root, read-only root fs, CapDrop ALL, no CapAdd, no-new-privileges, ports on 127.0.0.1 only, writable only /data and /tmp",
            summarize(container.attrs),
            problems,
        )
    _assert_cases(record, names)
