"""ARS-7 and the ziggurat normal transform in numpy, vectorised over counters.

ARS ("AES with a Randomised key Schedule", Salmon, Moraes, Dror and Shaw, "Parallel random
numbers: as easy as 1, 2, 3", SC'11) encrypts a 128-bit counter with R rounds of AES whose
round keys advance by Weyl constants. Layout (same as the C++ core): a 128-bit value is a
(low, high) pair of 64-bit halves; its 16 bytes, low half first and each half little-endian,
are the AES state bytes (byte i = row i % 4, column i // 4). key = (seed, 0); counter =
(c, stream). A block gives two 53-bit uniforms u0 (low half), u1 (high half), and two
normals by the ziggurat: normal j of a stream comes from the low (j even) or high (j odd)
half of block j // 2, with the C++ core's bit layout, tables (ziggurat_tables.py, generated
with the core's header) and slow path (cpp/include/modelcollapse/random.hpp, "The normal
transform"), bit for bit: the fast path is a multiplication and a compare, and the slow
path's log and exp below repeat the core's fastmath functions operation by operation (numpy
rounds each one, as the core's baseline code does). See docs/foundation.md, "Randomness".
"""
from __future__ import annotations

import numpy as np

from . import ziggurat_tables as zt

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


def _log_scaled(x: np.ndarray, k: int) -> np.ndarray:
    """log(x 2^-k) for positive normal doubles x: fastmath::detail::log_scaled, operation by operation."""
    x = np.asarray(x, dtype=np.float64)
    lg = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01,
          1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01)
    ln2_hi, ln2_lo = 6.93147180369123816490e-01, 1.90821492927058770002e-10
    top = x.view(np.uint64) + np.uint64(0x3FF0000000000000 - 0x3FE6A09E00000000)
    m = ((top & np.uint64(0x000FFFFFFFFFFFFF)) + np.uint64(0x3FE6A09E00000000)).view(np.float64)
    e = ((top >> np.uint64(52)) | np.uint64(0x4330000000000000)).view(np.float64) - (4503599627370496.0 + 1023.0 + k)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (lg[1] + w * (lg[3] + w * lg[5]))
    t2 = z * (lg[0] + w * (lg[2] + w * (lg[4] + w * lg[6])))
    big_r = t2 + t1
    hfsq = 0.5 * f * f
    return e * ln2_hi - ((hfsq - (s * (hfsq + big_r) + e * ln2_lo)) - f)


def _exp_nonpositive(x: np.ndarray) -> np.ndarray:
    """exp(x) for x <= 0: fastmath::exp_nonpositive (reduction by ln 2, Taylor series in Estrin's
    order, scaling by 2^(k + 600) then 2^-600), operation by operation."""
    x = np.maximum(np.asarray(x, dtype=np.float64), -745.5)
    shifter = 6755399441055744.0
    t = x * 1.4426950408889634074 + shifter
    kf = t - shifter
    k = t.view(np.int64) - np.float64(shifter).view(np.int64)
    r = (x - kf * 6.93147180369123816490e-01) - kf * 1.90821492927058770002e-10
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    a0 = 1.0 + r
    a1 = 1.0 / 2.0 + r * (1.0 / 6.0)
    a2 = 1.0 / 24.0 + r * (1.0 / 120.0)
    a3 = 1.0 / 720.0 + r * (1.0 / 5040.0)
    a4 = 1.0 / 40320.0 + r * (1.0 / 362880.0)
    a5 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0)
    a6 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0)
    b0 = a0 + r2 * a1
    b1 = a2 + r2 * a3
    b2 = a4 + r2 * a5
    p = (b0 + r4 * b1) + r8 * (b2 + r4 * a6)
    scale = ((k + 1623).astype(np.uint64) << np.uint64(52)).view(np.float64)
    return (p * scale) * 2.0**-600


def _numerator(x: np.ndarray) -> np.ndarray:
    """(x >> 11) + 0.5 as a double (the uniform's numerator: to_uniform = it times 2^-53)."""
    return (x >> np.uint64(11)).astype(np.float64) + 0.5


SLOW_BLOCKS = 16  # kZigguratSlowBlocks: the slow path's last block


def _u52(w: np.ndarray) -> np.ndarray:
    """The word's 52-bit integer u (bits 12-63) as a double (exact)."""
    return (w >> np.uint64(12)).astype(np.float64)


def _signed(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x >= 0 with the word's bit 8 as its sign."""
    return (np.asarray(x, dtype=np.float64).view(np.uint64) | ((w & np.uint64(0x100)) << np.uint64(55))).view(np.float64)


def ziggurat(words: np.ndarray, seed: int, stream: np.ndarray, counter: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Normals from their 64-bit words: normal 2 counter + half of each stream (arrays of one shape).

    The fast path for all words at once; the rejected ones (about 1.5%) then run the slow path
    together, one slow-path block per round: block k of a normal is ARS-7 of (counter, stream)
    under key (seed, 2k + half). A word of layer 0 goes to the tail (a try per block, both halves);
    another one to the wedge test (U from the block's low half; on rejection the high half is the
    next word, which the fast path may accept). After block SLOW_BLOCKS the current candidate stands.
    """
    words = np.asarray(words, dtype=np.uint64)
    layer = (words & np.uint64(0xFF)).astype(np.intp)
    u = _u52(words)
    z = _signed(u * zt.WIDTH[layer], words)
    todo = np.flatnonzero(~(u < zt.ACCEPT[layer]))
    if todo.size == 0:
        return z
    w = words.reshape(-1)[todo]
    st = np.broadcast_to(np.asarray(stream, dtype=np.uint64), words.shape).reshape(-1)[todo]
    ctr = np.broadcast_to(np.asarray(counter, dtype=np.uint64), words.shape).reshape(-1)[todo]
    hf = np.broadcast_to(np.asarray(half, dtype=np.uint64), words.shape).reshape(-1)[todo]
    tail = np.zeros(todo.size, dtype=bool)  # in the tail's own loop
    out = np.empty(todo.size)
    live = np.ones(todo.size, dtype=bool)
    for k in range(1, SLOW_BLOCKS + 1):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        lo = np.empty(idx.size, dtype=np.uint64)
        hi = np.empty(idx.size, dtype=np.uint64)
        for h in (0, 1):
            sel = hf[idx] == h
            if sel.any():
                lo[sel], hi[sel] = ars((ctr[idx][sel], st[idx][sel]), (seed, 2 * k + h))
        last = k == SLOW_BLOCKS
        wi = w[idx]
        li = (wi & np.uint64(0xFF)).astype(np.intp)
        x = _u52(wi) * zt.WIDTH[li]
        go_tail = tail[idx] | (li == 0)
        # the tail: x = -log(U1) / r, y = -log(U2), accept if 2 y > x^2 (or at the last block)
        xt = -_log_scaled(_numerator(lo), 53) * zt.INV_R
        yt = -_log_scaled(_numerator(hi), 53)
        t_done = go_tail & ((yt + yt > xt * xt) | last)
        out[idx[t_done]] = _signed(zt.R + xt[t_done], wi[t_done])
        tail[idx[go_tail]] = True
        # the wedge: a height in layer li against the curve; else the block's high half restarts
        y = zt.HEIGHT[li] + (zt.HEIGHT[li - 1] - zt.HEIGHT[li]) * (_numerator(lo) * 2.0**-53)
        wedge = ~go_tail
        w_ok = wedge & (y < _exp_nonpositive(-0.5 * (x * x)))
        out[idx[w_ok]] = _signed(x[w_ok], wi[w_ok])
        again = wedge & ~w_ok
        w[idx[again]] = hi[again]
        nw = hi[again]
        nl = (nw & np.uint64(0xFF)).astype(np.intp)
        nu = _u52(nw)
        n_ok = (nu < zt.ACCEPT[nl]) | last
        out[idx[again][n_ok]] = _signed(nu[n_ok] * zt.WIDTH[nl[n_ok]], nw[n_ok])
        finished = t_done | w_ok
        finished[np.flatnonzero(again)[n_ok]] = True
        live[idx[finished]] = False
    z.flat[todo] = out  # C order, as flatnonzero's (z need not be C-contiguous: no reshape view)
    return z


def normals(seed: int, stream: np.ndarray | int, first: int, n: int) -> np.ndarray:
    """Normals number [first, first + n) of each stream: shape stream.shape + (n,)."""
    b0 = first // 2
    count = (first + n + 1) // 2 - b0
    stream = np.asarray(stream, dtype=np.uint64)
    counter = np.arange(b0, b0 + count, dtype=np.uint64)
    lo, hi = blocks(seed, stream[..., None], counter)
    pos = np.arange(first - 2 * b0, first - 2 * b0 + n)
    words = np.stack([lo, hi], axis=-1).reshape(lo.shape[:-1] + (-1,))[..., pos]
    j = np.uint64(2 * b0) + pos.astype(np.uint64)
    return ziggurat(words, seed, np.broadcast_to(stream[..., None], words.shape), j >> np.uint64(1),
                    j & np.uint64(1))


def uniforms(seed: int, stream: np.ndarray | int, first: int, n: int) -> np.ndarray:
    """Uniforms number [first, first + n) of each stream: shape stream.shape + (n,)."""
    u0, u1, pos = _pairs(seed, stream, first, n)
    u = np.stack([u0, u1], axis=-1)
    return u.reshape(u.shape[:-2] + (-1,))[..., pos]
