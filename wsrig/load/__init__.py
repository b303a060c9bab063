"""Load generation and latency measurement for the load and performance stages.

``schedule`` and ``recorder`` are pure (constant-rate plans, coordinated-omission-safe
latency bookkeeping); ``publisher`` and ``subscriber`` are the processes that talk to
the backend; ``runner`` starts them, samples resources, and merges the results.
"""
