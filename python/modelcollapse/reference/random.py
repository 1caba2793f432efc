"""ARS-7 and the Box-Muller transform in numpy, vectorised over counters.

ARS ("AES with a Randomised key Schedule", Salmon, Moraes, Dror and Shaw, "Parallel random
numbers: as easy as 1, 2, 3", SC'11) encrypts a 128-bit counter with R rounds of AES whose
round keys advance by Weyl constants. Layout (same as the C++ core): a 128-bit value is a
(low, high) pair of 64-bit halves; its 16 bytes, low half first and each half little-endian,
are the AES state bytes (byte i = row i % 4, column i // 4). key = (seed, 0); counter =
(c, stream). A block gives two 53-bit uniforms u0 (low half), u1 (high half), and the
normals r cos(2 pi u1), r sin(2 pi u1) with r = sqrt(-2 log u0). Normal j of a stream
comes from block j // 2. See docs/foundation.md, section "Randomness".
"""
from __future__ import annotations

import numpy as np

ROUNDS = 7
WEYL = (0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B)  # golden ratio, sqrt(3) - 1 (64-bit fractions)
PURPOSE_SHIFT = 56
MASK64 = (1 << 64) - 1


def _gf_mul(a: int, b: int) -> int:
    """Product in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1."""
    p = 0
    for _ in range(8):
        if b & 1:
            p ^= a
        a = ((a << 1) ^ (0x1B if a & 0x80 else 0)) & 0xFF
        b >>= 1
    return p


def _sbox() -> np.ndarray:
    """The AES S-box: inverse in GF(2^8) (0 -> 0), then the affine map."""
    box = np.empty(256, dtype=np.uint8)
    for x in range(256):
        inv = next((y for y in range(1, 256) if _gf_mul(x, y) == 1), 0)
        rot = [((inv << r) | (inv >> (8 - r))) & 0xFF for r in range(5)]
        box[x] = rot[0] ^ rot[1] ^ rot[2] ^ rot[3] ^ rot[4] ^ 0x63
    return box


SBOX = _sbox()
# ShiftRows: output byte r + 4c takes input byte r + 4((c + r) mod 4).
SHIFT_ROWS = np.array([r + 4 * ((c + r) % 4) for c in range(4) for r in range(4)])


# Multiplication by x in GF(2^8), as a table.
XTIME = np.array([_gf_mul(a, 2) for a in range(256)], dtype=np.uint8)


def aes_round(state: np.ndarray, round_key: np.ndarray, last: bool = False) -> np.ndarray:
    """One AES encryption round on (..., 16) uint8 states: ShiftRows, SubBytes, MixColumns
    (not in the last round), xor with the round key (as the AESENC / AESENCLAST instructions)."""
    t = SBOX[state[..., SHIFT_ROWS]]
    if not last:
        a = t.reshape(t.shape[:-1] + (4, 4))  # (..., column, row)
        total = a[..., 0] ^ a[..., 1] ^ a[..., 2] ^ a[..., 3]
        t = (a ^ total[..., None] ^ XTIME[a ^ np.roll(a, -1, axis=-1)]).reshape(t.shape)
    return t ^ round_key


def _to_bytes(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    halves = np.stack([lo, hi], axis=-1).astype("<u8")
    return halves.view(np.uint8).reshape(lo.shape + (16,))


def _from_bytes(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    halves = np.ascontiguousarray(b).view("<u8")
    return halves[..., 0].astype(np.uint64), halves[..., 1].astype(np.uint64)


def ars(counter: tuple[np.ndarray, np.ndarray], key: tuple[int, int],
        rounds: int = ROUNDS) -> tuple[np.ndarray, np.ndarray]:
    """ARS-``rounds`` of counters given as (low, high) uint64 arrays; returns (low, high)."""
    lo, hi = (np.asarray(c, dtype=np.uint64) for c in counter)
    k_lo, k_hi = int(key[0]) & MASK64, int(key[1]) & MASK64
    state = _to_bytes(lo, hi) ^ _to_bytes(np.uint64(k_lo), np.uint64(k_hi))
    for r in range(1, rounds + 1):
        k_lo, k_hi = (k_lo + WEYL[0]) & MASK64, (k_hi + WEYL[1]) & MASK64
        state = aes_round(state, _to_bytes(np.uint64(k_lo), np.uint64(k_hi)), last=r == rounds)
    return _from_bytes(state)


def make_stream(purpose: int, index: np.ndarray | int) -> np.ndarray:
    idx = np.asarray(index, dtype=np.uint64) & np.uint64((1 << PURPOSE_SHIFT) - 1)
    return (np.uint64(purpose) << np.uint64(PURPOSE_SHIFT)) | idx


def blocks(seed: int, stream: np.ndarray | int, counter: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """ARS-7 blocks (low, high) for broadcast arrays of stream numbers and counters."""
    stream, counter = np.broadcast_arrays(np.asarray(stream, dtype=np.uint64), np.asarray(counter, dtype=np.uint64))
    return ars((counter, stream), (seed, 0))


def _uniform(x: np.ndarray) -> np.ndarray:
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def _pairs(seed: int, stream: np.ndarray | int, first: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocks covering numbers [first, first + n) of each stream: their two uniforms, and the
    position of each number (2 * block + half) relative to the first block."""
    b0 = first // 2
    count = (first + n + 1) // 2 - b0
    lo, hi = blocks(seed, np.asarray(stream, dtype=np.uint64)[..., None],
                    np.arange(b0, b0 + count, dtype=np.uint64))
    return _uniform(lo), _uniform(hi), np.arange(first - 2 * b0, first - 2 * b0 + n)


def normals(seed: int, stream: np.ndarray | int, first: int, n: int) -> np.ndarray:
    """Normals number [first, first + n) of each stream: shape stream.shape + (n,)."""
    u0, u1, pos = _pairs(seed, stream, first, n)
    r = np.sqrt(-2.0 * np.log(u0))
    theta = 2.0 * np.pi * u1
    z = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=-1)  # normals 2b, 2b + 1
    return z.reshape(z.shape[:-2] + (-1,))[..., pos]


def uniforms(seed: int, stream: np.ndarray | int, first: int, n: int) -> np.ndarray:
    """Uniforms number [first, first + n) of each stream: shape stream.shape + (n,)."""
    u0, u1, pos = _pairs(seed, stream, first, n)
    u = np.stack([u0, u1], axis=-1)
    return u.reshape(u.shape[:-2] + (-1,))[..., pos]
