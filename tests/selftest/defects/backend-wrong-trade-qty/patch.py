"""Defect backend-wrong-trade-qty: the backend stores one trade with a wrong quantity.

store.Store.write inserts each group commit's rows into SQLite. The defect rewrites the
first ``trade`` row the process ever stores: its ``data.quantity`` is multiplied by 3
in the stored text. The live broadcast, the dashboard state and the acks are
untouched, so only a reconciliation of stored trades against positions (the
integration stage) can see it: the sum of that symbol's stored trades no longer
equals its position, and differs from what a client received.
"""

from pathlib import Path

TARGET = Path("/app/dashboard_backend/store.py")
OLD = 'db.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)'
NEW = 'db.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?)", _defect_skew_one_trade(rows))'
HELPER = """

_DEFECT_DONE = []


def _defect_skew_one_trade(rows):  # DEFECT (self-test only): one stored trade gets 3x its quantity
    import json as _json

    out = []
    for row in rows:
        run_id, seq, msg_type, ts_ns, recv_ns, text = row
        if msg_type == "trade" and not _DEFECT_DONE:
            env = _json.loads(text)
            env["data"]["quantity"] = round(env["data"]["quantity"] * 3, 6)
            text = _json.dumps(env, separators=(",", ":"))
            _DEFECT_DONE.append(seq)
        out.append((run_id, seq, msg_type, ts_ns, recv_ns, text))
    return out
"""

text = TARGET.read_text()
if text.count(OLD) != 1:
    raise SystemExit(f"backend-wrong-trade-qty: the insert in Store.write was not found exactly once in {TARGET}")
TARGET.write_text(text.replace(OLD, NEW) + HELPER)
print(f"backend-wrong-trade-qty: patched Store.write in {TARGET} (first stored trade: quantity x3)")
