"""Benchmarks for `placement`: seeded failover scenarios, a runner and a report.

    python -m bench run --sizes S,M --seeds 3 --time-limit 10 --out results.jsonl
    python -m bench report results.jsonl

See docs/benchmarks.md.
"""
