"""Seeded draws that do not depend on the order of the calls.

Each draw is a hash of the seed and a key naming what it decides (``"partial", client order
id``), read as a number in [0, 1). An order's fate depends on its own id, not on how many orders
came before it, so a batch sent in another order, by two processes, or resumed after a crash
meets the same partial fills and faults, and the same seed always gives the same market.
"""

from __future__ import annotations

import hashlib

_SCALE = float(2**64)


def draw(seed: int, *key: object) -> float:
    """A number in [0, 1) fixed by ``seed`` and ``key``."""
    text = "\x1f".join([str(seed), *(str(k) for k in key)])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def happens(probability: float, seed: int, *key: object) -> bool:
    """Whether an event of ``probability`` happens for ``key`` (never for 0, always for 1)."""
    return probability > 0 and draw(seed, *key) < probability


def split(total: int, parts: int, grain: int, seed: int, *key: object) -> list[int]:
    """``total`` units cut into at most ``parts`` positive pieces that are multiples of
    ``grain`` (the last takes what the grain leaves over), in proportions drawn by ``key``;
    the pieces sum to ``total`` exactly."""
    grains = total // grain
    parts = max(1, min(parts, grains))
    if parts == 1:
        return [total]
    weights = [1.0 + draw(seed, *key, k) for k in range(parts)]
    scale = sum(weights)
    sizes = [max(1, int(grains * w / scale)) for w in weights[:-1]]
    while sum(sizes) > grains - 1:  # leave the last piece at least one grain
        sizes[sizes.index(max(sizes))] -= 1
    pieces = [s * grain for s in sizes]
    return [*pieces, total - sum(pieces)]
