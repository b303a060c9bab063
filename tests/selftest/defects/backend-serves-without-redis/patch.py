"""Defect backend-serves-without-redis: a replica that lost Redis carries on from memory.

The cluster's contract (docs/CLUSTER.md) says a replica out of step with the shared log
fails ``/ready`` (HAProxy drains it), closes its connections with 1013, answers new
ones and its data endpoints with 503, and acks nothing Redis did not store. Here its
readiness only asks whether it once replayed the log, so it stays ready, keeps its
clients and keeps serving what it has in memory as if it were live; and an append that
fails is applied locally instead of closing the publisher, so the replica stores,
broadcasts and acks envelopes that are in no other replica's log and in no Redis.
"""

from _edit import replace_once

replace_once(
    "backend-serves-without-redis",
    "/app/dashboard_backend/shared_log.py",
    [
        (
            "    def ready(self, now: float) -> bool:\n",
            "    def ready(self, now: float) -> bool:\n"
            "        return self.replayed  # DEFECT: ready whatever has happened to the log since\n",
        )
    ],
    "LogHealth.ready: ready once replayed, whatever the log",
)
replace_once(
    "backend-serves-without-redis",
    "/app/dashboard_backend/redis_log.py",
    [
        (
            "            for run_id in runs:\n                self.on_failed(run_id)\n            return\n",
            "            self._failed -= runs  # DEFECT: an append that failed is served and acked from memory\n"
            '            self.apply([LogEntry("0-0", r, s, t, x, n) for r, s, t, x, n in batch])\n'
            "            return\n",
        )
    ],
    "RedisLog._append: a failed append applied locally (stored, broadcast, acked)",
)
