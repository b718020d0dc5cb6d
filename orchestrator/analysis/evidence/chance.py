"""How likely a pattern in the best trials is by chance alone, if the setting had no
effect on the metric: exact counts over random draws, no sampling, no SciPy."""

from __future__ import annotations

from math import comb


def span_chance(n: int, k: int, w: int) -> float:
    """The chance that k trials drawn at random from n, ordered by a setting, all lie
    within a stretch of w consecutive trials or fewer.

    A draw whose lowest and highest trial are s places apart counting both (its span) can
    start at n - s + 1 places and place its other k - 2 trials among the s - 2 between:
    (n - s + 1) * C(s - 2, k - 2) of the C(n, k) draws."""
    if k <= 1 or w >= n:
        return 1.0
    hits = sum((n - s + 1) * comb(s - 2, k - 2) for s in range(k, min(w, n) + 1))
    return hits / comb(n, k)


def tail_chance(n: int, m: int, k: int, g: int) -> float:
    """The chance that k trials drawn at random from n, m of which share a value, hold g
    or more of those m (the hypergeometric tail)."""
    total = comb(n, k)
    return sum(comb(m, x) * comb(n - m, k - x) for x in range(g, min(m, k) + 1)) / total


def all_chance(n: int, failed: int, size: int) -> float:
    """The chance that `size` trials drawn at random from n, `failed` of which failed,
    are all failures: C(failed, size) / C(n, size)."""
    if size > failed:
        return 0.0
    return comb(failed, size) / comb(n, size)
