"""Gaussian closed forms: the Hodge split of a linear error under a Gaussian (Lyapunov
equation), affine score models, the law of the reverse SDE with an affine score, and the
true KL it reaches (docs/hodge.md "Ground truth")."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.linalg

from .. import metrics
from .._validation import check_bool, check_choice, check_finite_array, check_real
from ..mixture import GaussianMixture
from ..results import Record
from ._common import ScoreFn, _check_base, _check_callable, _dim, _matrix, _vector
from ._model import PerturbedScore, _check_model


@dataclasses.dataclass(frozen=True)
class GaussianGradientPart(Record):
    """Hodge split of a linear error e(x) = E (x - m) + f under p = N(m, C)
    (:func:`gaussian_gradient_part`, :func:`gaussian_error_energies`).

    S : (d, d) symmetric matrix of the gradient part S (x - m) + f.
    R : (d, d) matrix E - S of the solenoidal part R (x - m).
    total : E|e|^2 = tr(E C E^T) + |f|^2.
    gradient : E|grad phi|^2 = tr(S C S) + |f|^2.
    solenoidal : E|r|^2 = tr(R C R^T).
    """

    S: np.ndarray
    R: np.ndarray
    total: float
    gradient: float
    solenoidal: float


def gaussian_gradient_part(E: Any, C: Any, f: Any = None) -> GaussianGradientPart:
    """Hodge split of the linear error e(x) = E (x - m) + f under p = N(m, C).

    The gradient part is S (x - m) + f with S symmetric solving SC + CS = EC + CE^T; the
    remainder (E - S)(x - m) is solenoidal (div(p (E - S)(x - m)) = 0).

    Parameters
    ----------
    E : (d, d) array or scalar
    C : (d, d) symmetric positive definite covariance
    f : (d,) array, scalar or None (zero)

    Returns
    -------
    GaussianGradientPart
        S, R = E - S and the energies ``total``, ``gradient``, ``solenoidal``
        (``res.gradient`` or ``res["gradient"]``).
    """
    C = check_finite_array(C, "C", ndim=2)
    d = C.shape[0]
    if C.shape != (d, d) or not np.allclose(C, C.T, rtol=1e-10, atol=1e-12 * np.abs(C).max()):
        raise ValueError(f"C must be a symmetric (d, d) covariance, got shape {C.shape}")
    if np.linalg.eigvalsh(C).min() <= 0:
        raise ValueError("C must be positive definite (a covariance)")
    E = _matrix(E, d, "E")
    f = _vector(f, d, "f")
    # The energies are quadratic in E, C and f: beyond 1e150 they overflow float64, and the
    # Lyapunov solver refuses non-finite input with a message that names nothing.
    for arr, name in ((E, "E"), (C, "C"), (f, "f")):
        if np.abs(arr).max(initial=0.0) > 1e150:
            raise ValueError(f"{name} has entries above 1e150: the energies would overflow; rescale the problem")
    with np.errstate(over="ignore", invalid="ignore"):
        Q = E @ C + C @ E.T
        S = scipy.linalg.solve_continuous_lyapunov(C, Q)
        S = 0.5 * (S + S.T)
        R = E - S
        out = GaussianGradientPart(S=S, R=R, total=float(np.trace(E @ C @ E.T) + f @ f),
                                   gradient=float(np.trace(S @ C @ S) + f @ f),
                                   solenoidal=float(np.trace(R @ C @ R.T)))
    if not all(np.all(np.isfinite(v)) for v in out.to_dict().values()):
        raise ValueError("the energies overflow: E, C or f too large (or C too close to singular)")
    return out


def affine_coefficients(score: ScoreFn, t: float, d: int, check: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(J, k) with score(x, t) = J x + k for an affine score model.

    Read from the values at 0 and at the unit vectors; with ``check`` the affinity is
    verified at one more point (ValueError otherwise).
    """
    _check_callable(score, "score")
    t = check_real(t, "t", low=0.0)
    d = _dim(d)
    pts = np.vstack([np.zeros(d), np.eye(d)])
    vals = check_finite_array(score(pts, t), "score(x, t)", shape=(d + 1, d))
    k = vals[0]
    J = (vals[1:] - k).T
    if check_bool(check, "check"):
        x = np.linspace(-0.7, 1.3, d)[None, :]
        ref = x @ J.T + k
        got = np.asarray(score(x, t))
        if not np.allclose(got, ref, rtol=1e-8, atol=1e-8 * (1 + np.abs(ref).max())):
            raise ValueError("the score model is not affine in x (needs a Gaussian base and affine terms)")
    return J, k


def _gaussian_moments_t(base: GaussianMixture, t: float) -> tuple[np.ndarray, np.ndarray]:
    if base.n_components != 1:
        raise ValueError("a Gaussian closed form needs a one-component base")
    pt = base.smooth(t)
    return pt.means[0], pt.full_covariances()[0]


def gaussian_error_energies(model: PerturbedScore, t: float) -> GaussianGradientPart:
    """Closed-form E|e_t|^2 and E|grad phi_t|^2 for a Gaussian base and affine terms.

    The error e_t of ``model`` must be affine (checked); returns the
    :func:`gaussian_gradient_part` of it under p_t (``total`` = E|e_t|^2, ``gradient`` =
    E|grad phi_t|^2).
    """
    _check_model(model)
    t = check_real(t, "t", low=0.0)
    m, C = _gaussian_moments_t(model.base, t)
    d = model.dim
    Je, ke = affine_coefficients(lambda x, s: model.error(x, s), t, d)
    return gaussian_gradient_part(Je, C, Je @ m + ke)


def kl_gaussian(m0: Any, C0: Any, m1: Any, C1: Any) -> float:
    """KL(N(m0, C0) || N(m1, C1)), computed by :func:`modelcollapse.metrics.gaussian_kl`
    (same argument order: the first law is the one the expectation is taken under).

    The means are (d,) vectors (or scalars for d = 1), the covariances symmetric positive
    definite (d, d) matrices (or scalars); anything else raises ValueError naming the
    argument.
    """
    # Checked here with this function's argument names; the formula is metrics' one.
    m0, C0 = metrics._gaussian_params(m0, C0, "m0", "C0")
    d = m0.shape[0]
    m1 = np.atleast_1d(check_finite_array(m1, "m1", ndim=(0, 1)))
    if m1.shape != (d,):
        raise ValueError(f"m1 must have shape ({d},) like m0, got {m1.shape}")
    m1, C1 = metrics._gaussian_params(m1, C1, "m1", "C1")
    try:
        return metrics.gaussian_kl(m0, C0, m1, C1)
    except ValueError:
        # the only error left after the checks above: the value does not fit in float64
        raise ValueError("KL overflows: m0, m1 too far apart or C1 too close to singular relative to C0 "
                         "(or C0, C1 too ill-conditioned)") from None


def gaussian_reverse_law(model: Any, T: float, delta: float, dim: int, init: str = "standard_normal",
                         base: GaussianMixture | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the continuous-time reverse SDE output with an affine score.

    dY = [Y + 2 s(T - tau, Y)] dtau + sqrt(2) dW; with s = J_t y + k_t the law stays Gaussian:
    m' = (I + 2J) m + 2k, Sigma' = (I + 2J) Sigma + Sigma (I + 2J)^T + 2I (solved with
    scipy's solve_ivp, rtol 1e-10). init: "standard_normal" or "exact" (p_T, needs base).
    """
    from scipy.integrate import solve_ivp

    score = _check_callable(model.score if hasattr(model, "score") else model, "model")
    T = check_real(T, "T", low=0.0, low_open=True, high=1e6)
    delta = check_real(delta, "delta", low=0.0, high=T, high_open=True)
    d = dim = _dim(dim, "dim")
    check_choice(init, "init", ("standard_normal", "exact"))
    if init == "exact":
        _check_base(base)
        if base is None:
            raise ValueError("init='exact' needs base")
        m0, C0 = _gaussian_moments_t(base, T)
    else:
        m0, C0 = np.zeros(d), np.eye(d)

    def rhs(tau, y):
        m = y[:d]
        S = y[d:].reshape(d, d)
        J, k = affine_coefficients(score, T - tau, d, check=False)
        B = np.eye(d) + 2 * J
        dS = B @ S + S @ B.T + 2 * np.eye(d)
        return np.concatenate([B @ m + 2 * k, dS.ravel()])

    affine_coefficients(score, T, d, check=True)
    sol = solve_ivp(rhs, (0.0, T - delta), np.concatenate([m0, C0.ravel()]), rtol=1e-10, atol=1e-12,
                    method="DOP853")
    y = sol.y[:, -1]
    if not sol.success or not np.all(np.isfinite(y)):
        raise ValueError(f"the reverse-law ODE failed ({sol.message}): the model's affine score is too large over T")
    S = y[d:].reshape(d, d)
    return y[:d], 0.5 * (S + S.T)


def true_kl_gaussian(model: PerturbedScore, T: float, delta: float, init: str = "standard_normal") -> float:
    """KL(p_delta || q_delta) for a Gaussian base and affine terms (continuous time).

    q_delta is the law of the reverse SDE from ``init`` (:func:`gaussian_reverse_law`),
    p_delta the smoothed base.
    """
    _check_model(model)
    mq, Cq = gaussian_reverse_law(model, T, delta, model.dim, init, model.base)
    mp, Cp = _gaussian_moments_t(model.base, delta)
    return kl_gaussian(mp, Cp, mq, Cq)

