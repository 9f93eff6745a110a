"""The argparse types every command line of the project shares (``type=`` callables), defined once.

Each turns one argument's text into a value or raises :class:`argparse.ArgumentTypeError` with a one-line
message that quotes what was given. Model and variant names are not argparse types: loading the weights or
building the variant gives the one-line error that says why (file not found, unknown variant and the known
ones), with exit status 2, as every command's other errors.
"""

from __future__ import annotations

import argparse


def energy_range(text: str) -> tuple[float, float]:
    """``LOW:HIGH`` in GeV, 0 < LOW <= HIGH, finite."""
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH in GeV, got {text!r}") from None
    if not 0 < lo <= hi < float("inf"):
        raise argparse.ArgumentTypeError(f"need 0 < LOW <= HIGH (finite), got {text!r}")
    return lo, hi


def positive_int(text: str) -> int:
    """A whole number >= 1 (counts, batch sizes, threads)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


threads = positive_int  # threads to pin a runtime to


def seed(text: str) -> int:
    """A random seed: a whole number, 0 <= seed < 2**63."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected a seed, a whole number >= 0, got {text!r}")
    return value


def name_list(text: str) -> list[str]:
    """Comma-separated names (or patterns), at least one, order kept."""
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def int_list(text: str) -> tuple[int, ...]:
    """Comma-separated positive integers, sorted, each once (batch sizes)."""
    try:
        values = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def increasing_sizes(text: str) -> tuple[int, ...]:
    """Comma-separated increasing sample sizes >= 2, e.g. paired sequential stages ``100,400,1000``."""
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 2 or list(sizes) != sorted(sizes):
        raise argparse.ArgumentTypeError(f"expected increasing shower counts >= 2 like 100,400,1000, got {text!r}")
    return sizes
