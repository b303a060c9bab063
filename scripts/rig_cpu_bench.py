"""The rig's own CPU per delivered message: load subscribers against a running backend.

Starts ``--processes`` subscriber processes (``wsrig.load.subscriber.subscriber_process``)
with ``--subscribers`` connections between them, then the load publisher at ``--rate``
msg/s for ``--duration`` s, waits until every subscriber has every message, and reports
the subscriber processes' CPU seconds (psutil, from "all connected" to "all delivered")
divided by the deliveries. ``--py-spy DIR`` records each subscriber process with py-spy
meanwhile (collapsed stacks) and prints the top frames.

Run it against a backend on 127.0.0.1 (not the compose stack), e.g.::

    cd services && SYSTEM__PORT=18000 SYSTEM__HOST=127.0.0.1 SYSTEM__DATA_DIR=$(mktemp -d) \\
        SYSTEM__WEBSOCKET_AUTH_TOKEN=dev-token SYSTEM__PUBLISHER_MAX_MSGS_PER_S=100000 \\
        SYSTEM__PUBLISHER_MSG_BURST=100000 ../.venv/bin/python -m dashboard_backend &
    .venv/bin/python scripts/rig_cpu_bench.py --url ws://127.0.0.1:18000 --rate 500 --subscribers 100
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import queue
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wsrig.load.merge import merge  # noqa: E402
from wsrig.load.publisher import PublisherSpec, publisher_process  # noqa: E402
from wsrig.load.subscriber import SubscriberSpec, subscriber_process  # noqa: E402


def _cpu(procs: list[psutil.Process]) -> tuple[float, float]:
    """User and system CPU seconds of ``procs``."""
    user = system = 0.0
    for p in procs:
        t = p.cpu_times()
        user += t.user
        system += t.system
    return user, system


def _top_frames(raw: Path, n: int = 12) -> str:
    """Self and inclusive sample shares of the busiest frames in py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        c = int(count)
        total += c
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")" if " (" in f else f for f in stack.split(";")
        ]
        own[frames[-1]] += c
        for f in set(frames):
            incl[f] += c
    lines = [f"  {total} samples; self:"]
    lines += [f"    {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(n)]
    lines.append("  inclusive (frames under the event loop):")
    below = [(f, c) for f, c in incl.most_common() if c < 0.9 * total]
    lines += [f"    {100 * c / total:5.1f}%  {f}" for f, c in below[:n]]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="ws://127.0.0.1:18000")
    ap.add_argument("--token", default="dev-token")
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--settle", type=float, default=15.0)
    ap.add_argument("--py-spy", dest="pyspy", default="", help="directory for py-spy collapsed stacks")
    args = ap.parse_args()

    ctx = mp.get_context("spawn")
    out: Any = ctx.Queue()
    stop = ctx.Event()
    run_id = f"load-{uuid.uuid4()}"
    symbol = f"L{run_id[5:13].upper()}"
    sizes = [
        args.subscribers // args.processes + (1 if i < args.subscribers % args.processes else 0)
        for i in range(args.processes)
    ]
    progress: Any = ctx.Array("q", len(sizes))
    start_at = time.time() + 1.5 * len(sizes)
    subs = [
        ctx.Process(
            target=subscriber_process,
            args=(SubscriberSpec(i, args.url, n, run_id, symbol, start_at=start_at), stop, progress, out),
            daemon=True,
        )
        for i, n in enumerate(sizes)
    ]
    for p in subs:
        p.start()
    results: dict[int, dict[str, Any]] = {}
    spies: list[subprocess.Popen[bytes]] = []
    try:
        connected = ready = 0
        while ready < len(subs):
            kind, index, payload = out.get(timeout=60)
            if kind == "ready":
                ready += 1
                connected += payload["connected"]
                if payload["failures"]:
                    print("connect failures:", payload["failures"])
            else:
                raise SystemExit(f"subscriber {index} ended before ready: {payload}")
        procs = [psutil.Process(p.pid) for p in subs]
        if args.pyspy:
            Path(args.pyspy).mkdir(parents=True, exist_ok=True)
            spies = [
                subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "py-spy"),
                        "record",
                        "-p",
                        str(p.pid),
                        "-r",
                        "200",
                        "-d",
                        str(int(args.duration + 3)),
                        "-f",
                        "raw",
                        "-o",
                        str(Path(args.pyspy) / f"sub{i}.txt"),
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for i, p in enumerate(subs)
            ]
        cpu0 = _cpu(procs)
        t0 = time.monotonic()
        spec = PublisherSpec(
            ws_url=args.url,
            token=args.token,
            run_id=run_id,
            phases=((args.rate, args.duration),),
            start_at_ns=time.time_ns() + 500_000_000,
            symbol=symbol,
        )
        pub = ctx.Process(target=publisher_process, args=(spec, out), daemon=True)
        pub.start()
        while True:
            msg = out.get(timeout=args.duration + 120)
            if msg[0] == "publisher":
                payload = msg[1]
                break
        pub.join(timeout=10)
        if "error" in payload:
            raise SystemExit(f"publisher: {payload['error']}")
        expected = payload["sent"] * connected
        deadline = time.monotonic() + args.settle
        while sum(progress[:]) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        delivered = sum(progress[:])
        cpu1 = _cpu(procs)
        user_s, sys_s = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
        cpu_s = user_s + sys_s
        wall = time.monotonic() - t0
        stop.set()
        while len(results) < len(subs):
            kind, index, payload2 = out.get(timeout=30)
            if kind == "result":
                results[index] = payload2
    except queue.Empty:
        raise SystemExit("timed out waiting for the rig's processes") from None
    finally:
        stop.set()
        for p in subs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    for s in spies:
        s.wait(timeout=30)
    errors = [r["error"] for r in results.values() if "error" in r]
    if errors:
        print("subscriber errors:", errors)
    lat = merge(results[i] for i in sorted(results))
    print(f"sent {payload['sent']} x {connected} subscribers = {expected} expected, {delivered} delivered")
    print(
        f"subscriber CPU {cpu_s:.2f} s (user {user_s:.2f}, system {sys_s:.2f}) over {wall:.1f} s wall: "
        f"{cpu_s * 1e6 / max(1, delivered):.2f} us per delivery"
    )
    own = [r["cpu_s"] for r in results.values() if isinstance(r.get("cpu_s"), float)]
    if own:
        print(f"  (the subscribers' own cpu_s, from ready to stop: {sum(own):.2f} s)")
    c = lat.corrected
    print(
        f"latency from intended: p50 {c.percentile_ms(50):.2f} ms p99 {c.percentile_ms(99):.2f} ms max {c.max_ms():.2f} ms"
    )
    print(
        "loop lag max per process:",
        [p.loop_lag_max_ms for p in lat.processes],
        "duplicated/reordered:",
        lat.duplicated,
        lat.reordered,
        "closed:",
        lat.closed,
    )
    if args.pyspy:
        for i in range(len(subs)):
            raw = Path(args.pyspy) / f"sub{i}.txt"
            if raw.is_file():
                print(f"py-spy subscriber {i}:")
                print(_top_frames(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
