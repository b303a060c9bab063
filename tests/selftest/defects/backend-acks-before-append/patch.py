"""Defect backend-acks-before-append: in Redis mode the publisher is acked on receipt.

The cluster's contract (docs/CLUSTER.md, "Durability contract") acks an envelope only
once Redis has confirmed its append to the shared log (and, with ``appendfsync always``,
fsynced it). Here the ingesting replica marks each envelope's seq as persisted the
moment it hands it to the appender, so the acker (woken by the next local commit) acks
it before Redis answered, and whatever the append then does: an append that fails
(Redis killed, paused past the timeout, the replica cut from it) was acked all the same,
the publisher forgets it, and it is in no replica's log. Nothing looks wrong while Redis
is healthy.
"""

from _edit import replace_once

replace_once(
    "backend-acks-before-append",
    "/app/dashboard_backend/publisher_session.py",
    [
        (
            '            rules.log.submit(run_id, seq, obj["type"], text, recv_ns)\n            return None\n',
            '            rules.log.submit(run_id, seq, obj["type"], text, recv_ns)\n'
            "            rules.ingest.mark_persisted({run_id: (seq, seq)})  # DEFECT: acked before the append is confirmed\n"
            "            return None\n",
        )
    ],
    "PublisherSession.receive (Redis mode): the seq counts as persisted on receipt",
)
