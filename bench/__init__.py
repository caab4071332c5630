"""Benchmarks: ``make bench`` runs them and writes ``bench/results/latest.json``.

Each figure is ``{"median": x, "min": x, "max": x, "unit": "..."}`` over repeated
runs; the file also records the machine and the git commit. Numbers are printed and
stored, never asserted: performance is judged by reading them.
"""
