"""While a process waits for a CPU, who runs? Samples /proc schedstat every 20 ms.

For each 20 ms window in which the threads of ``--pid`` spent more than ``--min-wait-ms``
waiting in the run queue (ready but not running), prints the processes that ran most
in that window. Session 6 found with it that Docker healthchecks (``runc init`` and a
``python3 -c urllib...`` per check, inside the pinned containers) took the backend's
core from under it (docs/BENCHMARKS.md).

    python3 scripts/runqueue_blame.py --pid $(pgrep -f '^python -m dashboard_backend') --seconds 8
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict


def schedstat() -> dict[tuple[str, str], tuple[int, int]]:
    """(pid, tid) -> (ns on CPU, ns waiting in the run queue), for every thread."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    run_ns, wait_ns, _ = f.read().split()
                out[(pid, tid)] = (int(run_ns), int(wait_ns))
        except OSError:  # the process ended meanwhile
            pass
    return out


def command(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read().replace("\0", " ").strip()[:70] or pid
    except OSError:
        return pid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pid", required=True)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--min-wait-ms", type=float, default=25.0)
    args = ap.parse_args()
    prev, end = schedstat(), time.monotonic() + args.seconds
    while time.monotonic() < end:
        time.sleep(0.02)
        cur = schedstat()
        waited = sum(v[1] - prev.get(k, (0, 0))[1] for k, v in cur.items() if k[0] == args.pid) / 1e6
        if waited > args.min_wait_ms:
            ran: dict[str, float] = defaultdict(float)
            for k, v in cur.items():
                ran[command(k[0])] += (v[0] - prev.get(k, (0, 0))[0]) / 1e6
            top = sorted(ran.items(), key=lambda kv: -kv[1])[:5]
            print(
                f"{time.time() % 1000:8.2f} waited {waited:5.1f} ms; ran: "
                + "; ".join(f"{c} {ms:.1f} ms" for c, ms in top)
            )
        prev = cur


if __name__ == "__main__":
    main()
