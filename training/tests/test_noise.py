"""Noise contract (docs/model-format.md "Noise"): known answers, layout, determinism, statistics.

Run: cd training && /usr/bin/python3 -m pytest -q tests/test_noise.py
"""
import math

import numpy as np
import pytest
from scipy import stats

from dmvae.noise import MAX_SEED, latent_noise, philox4x32_10, seed_to_key


def _philox_scalar(ctr, key):
    """Independent one-block Philox4x32-10 on Python ints, written from the Random123 spec."""
    m = 0xFFFFFFFF
    c, k = list(ctr), list(key)
    for r in range(10):
        if r:
            k = [(k[0] + 0x9E3779B9) & m, (k[1] + 0xBB67AE85) & m]
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & m, (p0 >> 32) ^ c[3] ^ k[1], p0 & m]
    return c


@pytest.mark.parametrize("ctr,key,expected", [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
])
def test_philox_matches_random123_known_answers(ctr, key, expected):
    out = philox4x32_10(np.array(ctr, dtype=np.uint32), key)
    assert out.dtype == np.uint32
    assert tuple(int(w) for w in out) == expected
    assert tuple(_philox_scalar(ctr, key)) == expected


def _element_by_hand(seed, sample, j):
    """Element j of sample `sample`, following the contract's words one by one."""
    key = (seed % 2**32, seed // 2**32)
    w = _philox_scalar((j // 4, sample, 0, 0), key)
    u = [(wi + 0.5) / 2**32 for wi in w]
    r0, r1 = math.sqrt(-2 * math.log(u[0])), math.sqrt(-2 * math.log(u[2]))
    lanes = [r0 * math.cos(2 * math.pi * u[1]), r0 * math.sin(2 * math.pi * u[1]),
             r1 * math.cos(2 * math.pi * u[3]), r1 * math.sin(2 * math.pi * u[3])]
    return np.float32(lanes[j % 4])


@pytest.mark.parametrize("seed", [0, 1234, 2**32 + 7, MAX_SEED])
def test_latent_noise_elements_match_the_written_recipe(seed):
    shape = (4, 7, 7)  # D = 196: 49 blocks
    noise = latent_noise(seed, 3, shape)
    flat = noise.reshape(3, -1)
    for sample, j in [(0, 0), (0, 3), (1, 5), (2, 195), (2, 130)]:
        assert flat[sample, j] == _element_by_hand(seed, sample, j), (sample, j)


def test_latent_noise_drops_spare_lanes_of_the_last_block():
    noise = latent_noise(9, 2, (5,))  # D = 5: two blocks, lanes 1..3 of block 1 unused
    assert noise.shape == (2, 5)
    assert noise[1, 4] == _element_by_hand(9, 1, 4)


def test_latent_noise_is_deterministic_and_prefix_stable():
    a = latent_noise(42, 4, (4, 7, 7))
    b = latent_noise(42, 4, (4, 7, 7))
    assert a.dtype == np.float32 and a.shape == (4, 4, 7, 7)
    np.testing.assert_array_equal(a, b)
    # sample s only depends on (seed, s): asking for fewer samples gives the same first ones
    np.testing.assert_array_equal(latent_noise(42, 2, (4, 7, 7)), a[:2])
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(latent_noise(43, 1, (4, 7, 7))[0], a[0])


def test_key_uses_both_halves_of_the_seed():
    assert seed_to_key(2**32 + 5) == (5, 1)
    assert not np.array_equal(latent_noise(5, 1, (8,)), latent_noise(2**32 + 5, 1, (8,)))


def test_latent_noise_is_standard_normal():
    x = latent_noise(2024, 100, (1000,)).astype(np.float64).ravel()  # 100k values
    assert abs(x.mean()) < 0.02
    assert abs(x.std() - 1.0) < 0.02
    assert stats.kstest(x, "norm").pvalue > 1e-3
    # lanes come in Box-Muller pairs; they must be uncorrelated
    pairs = x.reshape(-1, 2)
    assert abs(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]) < 0.02


@pytest.mark.parametrize("seed", [-1, 2**53, 1.5, "7", True, None])
def test_bad_seed_is_a_clear_value_error(seed):
    with pytest.raises(ValueError, match="seed"):
        latent_noise(seed, 1, (4,))


def test_bad_count_or_shape_is_a_value_error():
    with pytest.raises(ValueError, match="count"):
        latent_noise(0, -1, (4,))
    with pytest.raises(ValueError, match="shape"):
        latent_noise(0, 1, (4, 0))
