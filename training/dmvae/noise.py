"""Counter-based starting noise, exactly as docs/model-format.md ("Noise") specifies.

The service rebuilds the same noise in TypeScript from (seed, sample index), so this file is
the reference: Philox4x32-10 (Random123) -> uniforms in (0, 1) -> Box-Muller in float64 ->
float32. Everything is vectorised numpy; one call makes all blocks of all samples at once.
"""
import numpy as np

NOISE_GENERATOR = "philox4x32-10-box-muller"
NOISE_VERSION = 1
MAX_SEED = 2**53 - 1  # seeds travel as JSON numbers; beyond 2^53 they stop being exact

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)  # round multipliers
_W0, _W1 = 0x9E3779B9, 0xBB67AE85  # key increments ("Weyl" constants)
_MASK32 = np.uint64(0xFFFFFFFF)
_ROUNDS = 10


def philox4x32_10(counters, key):
    """Random123 Philox4x32 with 10 rounds.

    counters: uint32 array [..., 4]; key: pair of ints (k0, k1) in 0..2^32-1.
    Returns uint32 [..., 4], one output block per counter block.
    """
    c = np.asarray(counters)
    if c.shape[-1:] != (4,):
        raise ValueError(f"counters must have a last axis of 4, got shape {c.shape}")
    c = c.astype(np.uint64)  # 64-bit lanes hold the full 32x32 products
    c0, c1, c2, c3 = (c[..., i] for i in range(4))
    k0, k1 = (int(k) & 0xFFFFFFFF for k in key)
    for r in range(_ROUNDS):
        if r > 0:  # the key is bumped between rounds, not before the first
            k0, k1 = (k0 + _W0) & 0xFFFFFFFF, (k1 + _W1) & 0xFFFFFFFF
        p0, p1 = _M0 * c0, _M1 * c2  # < 2^64, exact in uint64
        hi0, lo0 = p0 >> np.uint64(32), p0 & _MASK32
        hi1, lo1 = p1 >> np.uint64(32), p1 & _MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def seed_to_key(seed):
    """Validated seed -> Philox key (seed mod 2^32, floor(seed / 2^32))."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"noise seed must be an integer, got {seed!r} ({type(seed).__name__})")
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"noise seed must be in 0..2^53-1 ({MAX_SEED}), got {seed}")
    return seed & 0xFFFFFFFF, seed >> 32


def latent_noise(seed, count, shape):
    """Standard-normal latents float32 [count, *shape]; sample s uses counters (b, s, 0, 0)."""
    key = seed_to_key(seed)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    shape = tuple(int(d) for d in shape)
    if any(d <= 0 for d in shape):
        raise ValueError(f"latent shape must have positive sizes, got {shape}")
    count, dim = int(count), int(np.prod(shape, dtype=np.int64))
    if count >= 2**32 or dim >= 2**34:
        raise ValueError(f"count {count} or latent size {dim} exceeds the 32-bit counters")
    blocks = -(-dim // 4)  # ceil: the last block's spare lanes are dropped

    ctr = np.zeros((count, blocks, 4), dtype=np.uint32)
    ctr[..., 0] = np.arange(blocks, dtype=np.uint32)[None, :]
    ctr[..., 1] = np.arange(count, dtype=np.uint32)[:, None]
    words = philox4x32_10(ctr, key).astype(np.float64)  # [count, blocks, 4]

    u = (words + 0.5) / 2.0**32  # in (0, 1): log never sees 0
    r0 = np.sqrt(-2.0 * np.log(u[..., 0]))
    r1 = np.sqrt(-2.0 * np.log(u[..., 2]))
    a0, a1 = 2.0 * np.pi * u[..., 1], 2.0 * np.pi * u[..., 3]
    lanes = np.stack([r0 * np.cos(a0), r0 * np.sin(a0), r1 * np.cos(a1), r1 * np.sin(a1)], -1)
    flat = lanes.reshape(count, blocks * 4)[:, :dim]  # element j = block j // 4, lane j % 4
    return flat.astype(np.float32).reshape((count,) + shape)
