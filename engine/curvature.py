"""Second-order views of a cost: Hessian-vector products, the full Hessian, its top
eigenvalues by Lanczos, and the filter-normalised directions of loss-landscape plots.

Section 6.4.5 of the chapter: the Hessian of a network's cost is rarely formed; Krylov
methods only need products H v, and those come from differentiating twice,
H v = ∇θ[(∇θ J)ᵀ v], where v is a constant (no gradient flows into it). The engine's
``grad(..., create_graph=True)`` records the first gradient as a graph, so the second
``grad`` differentiates it. Forming H column by column, H e⁽ⁱ⁾ for every one-hot e⁽ⁱ⁾,
is the chapter's (expensive) way to get the whole matrix, fine for small nets.

Vectors here are flat float64 arrays that concatenate the parameters in the order given
(``flatten`` / ``unflatten`` convert). numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.autodiff import Tensor, as_tensor, grad

MatVec = Callable[[np.ndarray], np.ndarray]


def flatten(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """One flat float64 vector holding every array in order."""
    if not arrays:
        return np.zeros(0)
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])


def unflatten(vector: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Split a flat vector back into arrays of ``shapes`` (views into ``vector``)."""
    vector = np.asarray(vector, dtype=np.float64).reshape(-1)
    sizes = [math.prod(shape) for shape in shapes]
    if sum(sizes) != vector.size:
        raise ValueError(f"a vector of {vector.size} numbers cannot fill {sum(sizes)} entries")
    parts, offset = [], 0
    for shape, size in zip(shapes, sizes):
        parts.append(vector[offset : offset + size].reshape(shape))
        offset += size
    return parts


class HessianVectorProduct:
    """v ↦ H v for the Hessian H of ``cost`` with respect to ``params`` (flat vectors).

    The first gradient ∇θ J is recorded once, as a graph; each product then
    differentiates (∇θ J)ᵀ v with v held constant, one reverse pass per product.
    """

    def __init__(self, cost: Tensor, params: Sequence[Tensor]):
        if cost.size != 1:
            raise ValueError(f"the cost must be a scalar, got shape {cost.shape}")
        self.params = list(params)
        self.shapes = [p.shape for p in self.params]
        self.size = int(sum(p.size for p in self.params))
        self.gradients = grad(cost, self.params, create_graph=True)
        self.calls = 0

    @property
    def gradient(self) -> np.ndarray:
        """∇θ J at the point, flat."""
        return flatten([g.value for g in self.gradients])

    def __call__(self, vector: np.ndarray) -> np.ndarray:
        vector = np.asarray(vector, dtype=np.float64).reshape(-1)
        if vector.size != self.size:
            raise ValueError(f"the vector has {vector.size} entries, the parameters {self.size}")
        self.calls += 1
        directional: Tensor | None = None
        for g, v in zip(self.gradients, unflatten(vector, self.shapes)):
            if not g.requires_grad:
                continue  # this gradient does not depend on θ: its part of H v is zero
            term = (g * as_tensor(v)).sum()  # v is a constant: nothing flows into it
            directional = term if directional is None else directional + term
        if directional is None:
            return np.zeros(self.size)
        return flatten([h.value for h in grad(directional, self.params)])


def hessian_vector_product(
    cost: Tensor, params: Sequence[Tensor], vector: np.ndarray
) -> np.ndarray:
    """H v for one flat vector v (build a ``HessianVectorProduct`` to make several)."""
    return HessianVectorProduct(cost, params)(vector)


def full_hessian(matvec: MatVec, size: int, check: Callable[[], None] | None = None) -> np.ndarray:
    """The whole n × n Hessian as its columns H e⁽ⁱ⁾ (n products); ``check`` runs before each."""
    hessian = np.empty((size, size))
    basis = np.zeros(size)
    for i in range(size):
        if check is not None:
            check()
        basis[i] = 1.0
        hessian[:, i] = matvec(basis)
        basis[i] = 0.0
    return hessian


@dataclass
class LanczosResult:
    eigenvalues: np.ndarray  # top-k Ritz values, largest first
    vectors: np.ndarray  # (n, k): their unit Ritz vectors, in the same order
    iterations: int  # Lanczos steps taken (products H v)
    residuals: np.ndarray  # ‖H y − θ y‖ bound of each Ritz pair: |β_m s_m|


def lanczos(
    matvec: MatVec,
    size: int,
    k: int,
    iterations: int,
    seed: int = 0,
    callback: Callable[[int, np.ndarray], None] | None = None,
) -> LanczosResult:
    """Top-k eigenvalues of a symmetric operator from ``iterations`` Lanczos steps.

    Builds an orthonormal basis Q of the Krylov space span{q, Hq, H²q, ...} from a
    random unit start vector; in that basis H is the tridiagonal T = QᵀHQ, whose
    eigenvalues (the Ritz values) approach H's extreme eigenvalues first. Every new
    basis vector is orthogonalised against all earlier ones (twice), which keeps the
    finite-precision basis orthogonal, so no spurious copies of converged eigenvalues
    appear. The steps stop early when the Krylov space stops growing (an invariant
    subspace: the Ritz values are then exact). ``callback(step, ritz_values)`` runs after
    each step (a job's progress and cancellation check).
    """
    if size < 1:
        raise ValueError("lanczos needs at least one parameter")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    steps = min(max(int(iterations), 1), size)
    rng = np.random.default_rng(seed)
    basis = np.zeros((steps + 1, size))
    start = rng.standard_normal(size)
    basis[0] = start / np.linalg.norm(start)
    alphas: list[float] = []
    betas: list[float] = []
    scale = 0.0
    for j in range(steps):
        w = np.asarray(matvec(basis[j]), dtype=np.float64).reshape(-1)
        if not np.isfinite(w).all():
            raise ValueError(
                f"lanczos: the operator gave a non-finite product at step {j + 1} "
                "(is the cost finite at these weights?)"
            )
        alpha = float(basis[j] @ w)
        alphas.append(alpha)
        w = w - alpha * basis[j]
        if j > 0:
            w -= betas[-1] * basis[j - 1]
        for _ in range(2):  # full reorthogonalisation, "twice is enough"
            w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = float(np.linalg.norm(w))
        scale = max(scale, abs(alpha), beta)
        if callback is not None:
            callback(j + 1, _ritz(alphas, betas)[0][::-1])
        if j + 1 == steps or beta <= 1e-12 * max(scale, 1e-300):
            betas.append(beta)
            break
        betas.append(beta)
        basis[j + 1] = w / beta
    m = len(alphas)
    values, vectors = _ritz(alphas, betas[: m - 1])
    order = np.argsort(values)[::-1][: min(k, m)]
    ritz_vectors = basis[:m].T @ vectors[:, order]
    residuals = np.abs(betas[m - 1] * vectors[m - 1, order])
    return LanczosResult(values[order], ritz_vectors, m, residuals)


def _ritz(alphas: list[float], betas: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of the symmetric tridiagonal T."""
    m = len(alphas)
    tridiagonal = np.diag(np.asarray(alphas))
    off = np.asarray(betas[: m - 1])
    if m > 1:
        tridiagonal += np.diag(off, 1) + np.diag(off, -1)
    return np.linalg.eigh(tridiagonal)


def filter_normalized_direction(
    values: Sequence[np.ndarray], rng: np.random.Generator, biases: bool = False
) -> list[np.ndarray]:
    """A random direction in parameter space scaled unit by unit to the weights it moves.

    A raw Gaussian direction would move a layer with small weights relatively far and
    one with large weights hardly at all, so a plot along it would mostly show the
    scale of each layer. Here each weight matrix W (fan_in × fan_out, row-vector
    convention) gets a Gaussian matrix D of its shape, and every column of D (the
    incoming weights of one unit, its "filter") is rescaled to the length of the same
    column of W. A step α along D then changes every unit's filter by the same fraction
    α of its own size. One-dimensional parameters (biases, PReLU slopes, RBF widths)
    are left out (zero) unless ``biases``: each of their entries is then one unit's
    filter and gets a random sign times its own magnitude.
    """
    direction = []
    for value in values:
        value = np.asarray(value, dtype=np.float64)
        d = rng.standard_normal(value.shape)
        if value.ndim >= 2:
            columns = value.reshape(-1, value.shape[-1])
            d_columns = d.reshape(-1, value.shape[-1])
            norms = np.linalg.norm(columns, axis=0)
            d_norms = np.linalg.norm(d_columns, axis=0)
            d = (d_columns * (norms / np.where(d_norms > 0, d_norms, 1.0))).reshape(value.shape)
        elif biases:
            d = np.sign(d) * np.abs(value)
        else:
            d = np.zeros_like(value)
        direction.append(d)
    return direction
