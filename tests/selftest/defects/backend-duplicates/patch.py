"""Defect backend-duplicates: a resuming dashboard client gets a seq it already has.

fanout.Hub.replay hands a client that resumes with ``after_seq = N`` every ring entry
of the run with seq > N. The defect is the classic off-by-one ``>=``: the replay starts
at N itself, so every resume delivers the client's last seq a second time (PROTOCOL.md:
"Per run_id, a client receives strictly increasing seqs, each at most once").
Ingest, storage and acks are untouched.
"""

from pathlib import Path

TARGET = Path("/app/dashboard_backend/fanout.py")
# (old, new) for the versions of Hub.replay seen so far; exactly one must match.
CANDIDATES = [
    ("if e_run != run_id or seq <= after_seq:", "if e_run != run_id or seq < after_seq:  # DEFECT"),
    ("if e.run_id != run_id or e.seq <= after_seq:", "if e.run_id != run_id or e.seq < after_seq:  # DEFECT"),
    (
        "e.run_id == run_id and e.seq > after_seq and sub.matches(e.type, e.symbol)",
        "e.run_id == run_id and e.seq >= after_seq and sub.matches(e.type, e.symbol)",
    ),
]

text = TARGET.read_text()
hits = [(old, new) for old, new in CANDIDATES if text.count(old) == 1]
if len(hits) != 1:
    raise SystemExit(f"backend-duplicates: Hub.replay's seq filter not found exactly once in {TARGET}")
TARGET.write_text(text.replace(*hits[0]))
print(f"backend-duplicates: patched Hub.replay in {TARGET} (resume replays from after_seq inclusive)")
