"""Philox4x32-10 and the Box-Muller transform in numpy, vectorised over counters.

Layout (same as the C++ core): key = (seed low, seed high 32 bits); counter =
(c low, c high, stream low, stream high); a block gives two 53-bit uniforms
u0 = words (1, 0), u1 = words (3, 2), and the normals r cos(2 pi u1), r sin(2 pi u1) with
r = sqrt(-2 log u0). Normal j of a stream comes from block j // 2.
"""
from __future__ import annotations

import numpy as np

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK32 = np.uint64(0xFFFFFFFF)
PURPOSE_SHIFT = 56


def make_stream(purpose: int, index: np.ndarray | int) -> np.ndarray:
    idx = np.asarray(index, dtype=np.uint64) & np.uint64((1 << PURPOSE_SHIFT) - 1)
    return (np.uint64(purpose) << np.uint64(PURPOSE_SHIFT)) | idx


def philox4x32_10(counter: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox4x32-10 on an (..., 4) array of 32-bit counter words; returns (..., 4) words."""
    c = np.asarray(counter, dtype=np.uint64) & MASK32
    c0, c1, c2, c3 = (c[..., i].copy() for i in range(4))
    k0, k1 = int(key[0]) & 0xFFFFFFFF, int(key[1]) & 0xFFFFFFFF
    for r in range(10):
        if r > 0:
            k0 = (k0 + W0) & 0xFFFFFFFF
            k1 = (k1 + W1) & 0xFFFFFFFF
        p0 = M0 * c0
        p1 = M1 * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & MASK32,
                          (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & MASK32)
    return np.stack([c0, c1, c2, c3], axis=-1)


def blocks(seed: int, stream: np.ndarray | int, counter: np.ndarray | int) -> np.ndarray:
    """Philox blocks for broadcast arrays of stream numbers and counters."""
    stream = np.asarray(stream, dtype=np.uint64)
    counter = np.asarray(counter, dtype=np.uint64)
    stream, counter = np.broadcast_arrays(stream, counter)
    words = np.stack([counter & MASK32, counter >> np.uint64(32), stream & MASK32, stream >> np.uint64(32)], axis=-1)
    return philox4x32_10(words, (seed & 0xFFFFFFFF, seed >> 32))


def _uniform(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    x = (hi << np.uint64(32)) | lo
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def uniform_pairs(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _uniform(words[..., 1], words[..., 0]), _uniform(words[..., 3], words[..., 2])


def normals(seed: int, stream: np.ndarray | int, first: int, n: int) -> np.ndarray:
    """Normals number [first, first + n) of each stream: shape stream.shape + (n,)."""
    stream = np.asarray(stream, dtype=np.uint64)
    j = np.arange(first, first + n, dtype=np.uint64)
    w = blocks(seed, stream[..., None], j // np.uint64(2))
    u0, u1 = uniform_pairs(w)
    r = np.sqrt(-2.0 * np.log(u0))
    theta = 2.0 * np.pi * u1
    return np.where(j % np.uint64(2) == 0, r * np.cos(theta), r * np.sin(theta))


def uniforms(seed: int, stream: np.ndarray | int, first: int, n: int) -> np.ndarray:
    """Uniforms number [first, first + n) of each stream: shape stream.shape + (n,)."""
    stream = np.asarray(stream, dtype=np.uint64)
    j = np.arange(first, first + n, dtype=np.uint64)
    u0, u1 = uniform_pairs(blocks(seed, stream[..., None], j // np.uint64(2)))
    return np.where(j % np.uint64(2) == 0, u0, u1)
