"""Benchmarks for the hot paths. Run with ``make bench`` (``python -m bench``).

Each benchmark measures its subject and a baseline side by side, interleaved in one run, and
reports ratios: this machine is shared and noisy, so absolute times mean little.
"""
