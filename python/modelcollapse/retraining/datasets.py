"""Toy 2D data sets of the retraining experiments (Bertrand et al., Figs 3-4)."""
from __future__ import annotations

import numpy as np

from .._types import SeedLike
from .._validation import as_generator, check_allocation, check_positive_int, check_real


def eight_gaussians(n_samples: int, *, seed: SeedLike = 0, radius: float = 4.0, std: float = 0.5,
                    scale: float = 1 / np.sqrt(2)) -> np.ndarray:
    """``n_samples`` points of 8 equal Gaussian modes on a circle: centres radius (cos 2 pi k/8, sin 2 pi k/8),
    isotropic std ``std``, then everything scaled by ``scale`` (default 1/sqrt(2))."""
    n = check_positive_int(n_samples, "n_samples")
    check_allocation(6.0 * n, "n_samples", "the points")
    radius = check_real(radius, "radius", low=0.0, low_open=True, high=1e150)
    std = check_real(std, "std", low=0.0, high=1e150)
    scale = check_real(scale, "scale", low=-1e150, high=1e150)
    rng = as_generator(seed)
    k = rng.integers(0, 8, size=n)
    ang = 2 * np.pi * k / 8
    centres = radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    return scale * (centres + std * rng.standard_normal((n, 2)))


def eight_gaussians_centres(radius: float = 4.0, scale: float = 1 / np.sqrt(2)) -> np.ndarray:
    """The 8 mode centres of :func:`eight_gaussians` (8, 2)."""
    radius = check_real(radius, "radius", low=0.0, low_open=True, high=1e150)
    scale = check_real(scale, "scale", low=-1e150, high=1e150)
    ang = 2 * np.pi * np.arange(8) / 8
    return scale * radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)


def two_moons(n_samples: int, *, seed: SeedLike = 0, noise: float = 0.1) -> np.ndarray:
    """``n_samples`` points of the two interleaved half circles (as scikit-learn's ``make_moons``), centred
    on the origin and scaled by 2 (so both coordinates have std of order 1), with Gaussian
    noise ``noise`` (before scaling)."""
    n = check_positive_int(n_samples, "n_samples")
    check_allocation(8.0 * n, "n_samples", "the points")
    noise = check_real(noise, "noise", low=0.0, high=1e150)
    rng = as_generator(seed)
    upper = rng.random(n) < 0.5
    t = np.pi * rng.random(n)
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x, y], axis=1) + noise * rng.standard_normal((n, 2))
    return 2.0 * (pts - np.array([0.5, 0.25]))


DATASETS = {"eight_gaussians": eight_gaussians, "two_moons": two_moons}
