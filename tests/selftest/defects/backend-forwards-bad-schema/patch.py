"""Defect backend-forwards-bad-schema: a forwarded trade's quantity becomes a string.

The backend validates what publishers send, then forwards (and stores) a trade whose
``data.quantity`` it re-encoded as a string: a frame that breaks the contract's schema
on the client stream. It once made the message-flow probe crash instead of reporting
(issue 16 point 5); the stage must name the type, the field, the seq and the
validator's message, and go on. Ingest, acks and the stream's order are untouched.
"""

from _edit import replace_once

replace_once(
    "backend-forwards-bad-schema",
    "/app/dashboard_backend/publisher_session.py",
    [
        (
            "            entry = Entry(run_id, seq, msg_type, symbol_of(obj), text, declared_of(obj))\n",
            '            if msg_type == "trade":  # DEFECT: the forwarded quantity becomes a string\n'
            '                text = json.dumps({**obj, "data": {**obj["data"], "quantity": str(obj["data"].get("quantity"))}})\n'
            "            entry = Entry(run_id, seq, msg_type, symbol_of(obj), text, declared_of(obj))\n",
        )
    ],
    "PublisherSession.receive: a broadcast trade's quantity as a string",
)
