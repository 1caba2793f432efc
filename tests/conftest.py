import numpy as np
import pytest

import modelcollapse as mc


@pytest.fixture
def mixture_iso():
    return mc.GaussianMixture([0.2, 0.5, 0.3], [[-2.0, 0.0], [1.5, 1.0], [0.0, -2.5]], [0.3, 0.5, 0.2])


@pytest.fixture
def mixture_diag():
    return mc.GaussianMixture([0.6, 0.4], [[-1.0, 0.5, 0.0], [2.0, -1.0, 1.0]], [[0.3, 0.8, 0.5], [1.2, 0.2, 0.4]])


@pytest.fixture
def mixture_full():
    rng = np.random.default_rng(42)
    covs = []
    for _ in range(3):
        A = rng.normal(size=(3, 3))
        covs.append(A @ A.T / 3 + 0.2 * np.eye(3))
    return mc.GaussianMixture([0.3, 0.3, 0.4], rng.normal(size=(3, 3)) * 2, np.array(covs))


@pytest.fixture(params=["iso", "diag", "full"])
def any_mixture(request, mixture_iso, mixture_diag, mixture_full):
    return {"iso": mixture_iso, "diag": mixture_diag, "full": mixture_full}[request.param]
