"""Load generation and latency measurement for the load and performance stages.

``schedule`` and ``recorder`` are pure (constant-rate plans, coordinated-omission-safe
latency bookkeeping); ``publisher`` and ``subscriber`` are the processes that talk to
the backend; ``runner`` starts them and samples resources, and returns each subscriber
process's part raw; ``merge`` adds the parts exactly (the judge calls it,
``wsrig.judges.load``); ``report`` keeps a scenario's runs as a history and records the
judge's row.
"""
