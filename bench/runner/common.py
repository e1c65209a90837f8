"""Paths and small helpers shared by the runner's modules."""
import os, statistics, sys, time

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(BENCH)

_t0 = time.monotonic()


def log(*a):
    print(*a, flush=True)


def elapsed():
    s = int(time.monotonic() - _t0)
    return '%d:%02d' % (s // 60, s % 60)


def stats(values):
    """Median, min, max and spread (largest deviation from the median, in % of it) of some numbers."""
    v = [x for x in values if x is not None]
    if not v:
        return None
    m = statistics.median(v)
    spread = 100.0 * max(m - min(v), max(v) - m) / m if m else 0.0
    return {'median': m, 'min': min(v), 'max': max(v), 'n': len(v), 'spread_pct': spread}
