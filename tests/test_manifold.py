"""Manifold identities and agreement with straightforward float64 numpy formulas."""
from __future__ import annotations

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.errors import DimensionMismatchError, InvalidInputError
from ruvector_graph_attn.manifold import Euclidean, PoincareBall, Product, Sphere, from_description

from _manifold_refs import ref_dist, ref_expmap, ref_lambda, ref_logmap, ref_madd

CS = [0.1, 1.0, 2.0]


# ---------------------------------------------------------------- independent references (float64)
def ref_gyr(a, b, w, c):
    """Gyration from its definition gyr[a,b]w = -(a+b) + (a + (b + w))."""
    return ref_madd(-ref_madd(a, b, c), ref_madd(a, ref_madd(b, w, c), c), c)


def ball_points(rng, n, d, c, scale=0.9):
    """Random points strictly inside the ball of radius 1/sqrt(c) (norms up to scale/sqrt(c))."""
    v = rng.normal(size=(n, d))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    r = rng.uniform(0, scale, size=(n, 1)) / np.sqrt(c)
    return v * r


# -------------------------------------------------------------------------------- Poincaré ball
@pytest.mark.parametrize("c", CS)
def test_poincare_matches_reference_formulas(rng, c):
    ball = PoincareBall(c)
    x = ball_points(rng, 50, 5, c)
    y = ball_points(rng, 50, 5, c)
    u = rng.normal(size=(50, 5)) * 0.3
    np.testing.assert_allclose(ball.dist(x, y), ref_dist(x, y, c), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ball.mobius_add(x, y, project=False), ref_madd(x, y, c), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ball.lambda_x(x), ref_lambda(x, c)[:, 0], rtol=1e-12)
    np.testing.assert_allclose(ball.expmap(x, u, project=False), ref_expmap(x, u, c), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ball.logmap(x, y), ref_logmap(x, y, c), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ball.inner(x, u, y), ref_lambda(x, c)[:, 0] ** 2 * np.sum(u * y, -1), rtol=1e-12)
    sc = np.sqrt(c)
    nu = np.linalg.norm(u, axis=-1, keepdims=True)
    np.testing.assert_allclose(ball.expmap0(u, project=False), np.tanh(sc * nu) * u / (sc * nu), rtol=1e-10)
    ny = np.linalg.norm(y, axis=-1, keepdims=True)
    np.testing.assert_allclose(ball.logmap0(y), np.arctanh(sc * ny) * y / (sc * ny), rtol=1e-9)
    np.testing.assert_allclose(ball.dist0(y), 2 * np.arctanh(sc * ny[:, 0]) / sc, rtol=1e-9)
    # Möbius scalar multiplication: r (x) x = tanh(r artanh(sqrt(c)|x|)) x / (sqrt(c)|x|)
    nx = np.linalg.norm(x, axis=-1, keepdims=True)
    np.testing.assert_allclose(ball.mobius_scalar_mul(0.3, x, project=False),
                               np.tanh(0.3 * np.arctanh(sc * nx)) * x / (sc * nx), rtol=1e-9)
    # Möbius matvec (Ganea et al. eq. 27), m in torch Linear layout [out, in]
    m = rng.normal(size=(3, 5))
    mx = x @ m.T
    nmx = np.linalg.norm(mx, axis=-1, keepdims=True)
    want = np.tanh(nmx / nx * np.arctanh(sc * nx)) * mx / (sc * nmx)
    np.testing.assert_allclose(ball.mobius_matvec(m, x, project=False), want, rtol=1e-9, atol=1e-12)
    assert ball.curvature() == -c


@pytest.mark.parametrize("c", CS)
def test_poincare_identities(rng, c):
    ball = PoincareBall(c)
    x = ball_points(rng, 40, 6, c, 0.8)
    y = ball_points(rng, 40, 6, c, 0.8)
    z = ball_points(rng, 40, 6, c, 0.8)
    assert np.all(np.abs(ball.dist(x, x)) < 1e-7)
    np.testing.assert_allclose(ball.dist(x, y), ball.dist(y, x), rtol=1e-10)
    assert np.all(ball.dist(x, z) <= ball.dist(x, y) + ball.dist(y, z) + 1e-10)
    np.testing.assert_allclose(ball.mobius_add(x, -x), 0, atol=1e-12)
    np.testing.assert_allclose(ball.mobius_add(np.zeros(6), x), x, atol=1e-14)
    u = rng.normal(size=(40, 6)) * 0.2 / np.sqrt(c)
    np.testing.assert_allclose(ball.logmap(x, ball.expmap(x, u)), u, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ball.expmap(x, ball.logmap(x, y)), y, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ball.logmap0(ball.expmap0(u)), u, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ball.expmap0(ball.logmap0(y)), y, rtol=1e-9, atol=1e-12)
    # |log_x(y)|_x = d(x, y)
    np.testing.assert_allclose(ball.norm(x, ball.logmap(x, y)), ball.dist(x, y), rtol=1e-8)
    # Möbius scalar multiplication: 1 (x) x = x, (r + s) (x) x = r (x) x (+) s (x) x
    np.testing.assert_allclose(ball.mobius_scalar_mul(1.0, x), x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ball.mobius_scalar_mul(0.7, x),
                               ball.mobius_add(ball.mobius_scalar_mul(0.3, x), ball.mobius_scalar_mul(0.4, x)),
                               rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ball.mobius_matvec(np.eye(6), x), x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ball.inner(x, u), ref_lambda(x, c)[:, 0] ** 2 * np.sum(u * u, 1), rtol=1e-12)
    np.testing.assert_allclose(ball.egrad2rgrad(x, u), u / ref_lambda(x, c) ** 2, rtol=1e-12)
    np.testing.assert_allclose(ball.retr(x, u * 0), x)
    np.testing.assert_allclose(ball.mobius_matvec(np.zeros((2, 6)), x), 0)


@pytest.mark.parametrize("c", CS)
def test_poincare_parallel_transport(rng, c):
    ball = PoincareBall(c)
    x = ball_points(rng, 30, 4, c, 0.8)
    y = ball_points(rng, 30, 4, c, 0.8)
    u = rng.normal(size=(30, 4))
    v = rng.normal(size=(30, 4))
    tu, tv = ball.transp(x, y, u), ball.transp(x, y, v)
    # the Riemannian inner product is preserved
    np.testing.assert_allclose(ball.inner(y, tu, tv), ball.inner(x, u, v), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ball.transp(x, x, u), u, rtol=1e-10, atol=1e-12)
    # against the gyration's definition: P_{x->y}(u) = lambda_x / lambda_y gyr[y, -x] u
    want = ref_gyr(y, -x, u, c) * ref_lambda(x, c) / ref_lambda(y, c)
    np.testing.assert_allclose(tu, want, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ball.gyration(x, y, u), ref_gyr(x, y, u, c), rtol=1e-8, atol=1e-10)
    # transporting the log map along the geodesic: P_{x->y}(log_x y) = -log_y x
    np.testing.assert_allclose(ball.transp(x, y, ball.logmap(x, y)), -ball.logmap(y, x), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("c", CS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_poincare_distance_near_boundary_finite_and_increasing(c, dtype):
    ball = PoincareBall(c)
    e = np.zeros(3, dtype=dtype)
    e[0] = 1.0
    eps = 4e-3 if dtype == np.float32 else 1e-5
    ts = np.concatenate([np.linspace(0.0, 0.98, 50), 1 - np.geomspace(1e-2, eps, 30)]) / np.sqrt(c)
    pts = (ts[:, None] * e).astype(dtype)
    d = ball.dist(np.zeros(3, dtype), pts)
    assert d.dtype == dtype
    assert np.all(np.isfinite(d))
    assert np.all(np.diff(d) > 0)
    # distance between two points on opposite sides close to the boundary is finite and large
    far = ball.dist(pts[-1], -pts[-1])
    assert np.isfinite(far) and far > d[-1]


@pytest.mark.parametrize("c", CS)
def test_poincare_outside_points_raise_and_proj_is_explicit(c):
    ball = PoincareBall(c)
    r = 1 / np.sqrt(c)
    outside = np.array([[0.0, 0.1], [r * 1.01, 0.0]])
    with pytest.raises(InvalidInputError, match="outside the Poincaré ball"):
        ball.dist(outside, np.zeros(2))
    with pytest.raises(InvalidInputError):
        ball.logmap(np.zeros(2), np.array([r * (1 + 1e-9), 0.0]))  # just outside
    with pytest.raises(InvalidInputError):
        ball.mobius_add(np.array([r * 2, 0.0]), np.zeros(2))
    with pytest.raises(InvalidInputError):
        ball.expmap(np.array([0.0, r * 1.5]), np.zeros(2))
    p = ball.proj(outside)
    assert np.all(np.sqrt(c) * np.linalg.norm(p, axis=1) < 1)
    np.testing.assert_allclose(np.linalg.norm(p[1]), (1 - 1e-5) * r, rtol=1e-12)
    np.testing.assert_array_equal(p[0], outside[0])  # inside points are untouched
    p32 = ball.proj(outside.astype(np.float32))
    assert p32.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(p32[1]), (1 - 4e-3) * r, rtol=1e-6)
    assert np.isfinite(ball.dist(p, np.zeros(2))).all()


def test_poincare_validation_errors():
    ball = PoincareBall()
    with pytest.raises(InvalidInputError):
        PoincareBall(c=0)
    with pytest.raises(InvalidInputError):
        PoincareBall(c=-1)
    with pytest.raises(InvalidInputError):
        ball.dist([0.1, np.nan], [0.0, 0.0])
    with pytest.raises(DimensionMismatchError):
        ball.dist(np.zeros(3), np.zeros((4, 2)))
    with pytest.raises(InvalidInputError):
        ball.dist(np.zeros((3, 2)), np.zeros((4, 2)))  # leading axes do not broadcast
    with pytest.raises(InvalidInputError):
        ball.dist([], [])
    with pytest.raises(InvalidInputError):
        ball.dist("abc", [0.0])
    with pytest.raises(DimensionMismatchError):
        ball.mobius_matvec(np.eye(3), np.zeros((2, 4)))
    with pytest.raises(InvalidInputError, match="outside"):
        ball.dist([1.0, 0.0], [0.0, 0.0])  # exactly on the boundary (c|x|^2 = 1) is not a point
    with pytest.raises(InvalidInputError, match="row 2"):
        ball.check_point([[0.0, 0.0], [0.5, 0.5], [0.9, 0.9]])


@pytest.mark.parametrize("c", CS)
def test_poincare_kernel_path_dtype_and_broadcast(rng, c):
    ball = PoincareBall(c)
    pts = ball_points(rng, 1000, 8, c, 0.95)
    q = ball_points(rng, 1, 8, c)[0]
    want = ref_dist(q[None, :], pts, c)
    d64 = ball.dist(q, pts)  # Numba one-to-many path (N >= 256)
    assert d64.dtype == np.float64 and d64.shape == (1000,)
    np.testing.assert_allclose(d64, want, rtol=1e-9)
    np.testing.assert_allclose(ball.dist(pts, q), want, rtol=1e-9)
    np.testing.assert_allclose(ball.dist(q, pts[:10]), want[:10], rtol=1e-9)  # numpy path
    d32 = ball.dist(q.astype(np.float32), pts.astype(np.float32))
    assert d32.dtype == np.float32
    np.testing.assert_allclose(d32, want, rtol=2e-3, atol=1e-4)
    cd = ball.cdist(pts[:3], pts[:7])
    np.testing.assert_allclose(cd, ref_dist(pts[:3, None, :], pts[None, :7, :], c), rtol=1e-9, atol=1e-12)
    # float32 in, float32 out everywhere; mixed -> float64
    x32 = pts[:5].astype(np.float32)
    for out in (ball.expmap(x32, x32 * 0.1), ball.logmap(x32, x32[::-1]), ball.mobius_add(x32, x32),
                ball.expmap0(x32), ball.logmap0(x32), ball.transp(x32, x32[::-1], x32)):
        assert out.dtype == np.float32
    assert ball.dist(x32, pts[:5]).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_paths_validate_points(rng, dtype):
    ball = PoincareBall(2.0)
    pts = ball_points(rng, 1000, 4, 2.0).astype(dtype)
    q = pts[3].copy()
    bad = pts.copy()
    bad[700] = 1.0  # norm 2 > 1/sqrt(2)
    with pytest.raises(InvalidInputError, match="row 700"):
        ball.dist(q, bad)
    with pytest.raises(InvalidInputError, match="row 700"):
        ball.dist(bad, q)
    bad[700] = np.nan
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        ball.dist(q, bad)
    with pytest.raises(InvalidInputError, match="outside"):
        ball.dist(np.ones(4, dtype), pts)
    sph = Sphere(1.0)
    sp = sph.proj(rng.normal(size=(1000, 4))).astype(dtype)
    sbad = sp.copy()
    sbad[512] *= 1.5
    with pytest.raises(InvalidInputError, match="row 512"):
        sph.dist(sp[0], sbad)
    sbad[512] = np.inf
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        sph.dist(sp[0], sbad)
    with pytest.raises(DimensionMismatchError):
        ball.dist(q[:3], pts)


def test_poincare_float32_proj_keeps_results_inside():
    ball = PoincareBall(1.0)
    u = np.array([[50.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    y = ball.expmap0(u)
    assert y.dtype == np.float32
    assert np.all(np.linalg.norm(y, axis=1) <= 1 - 4e-3 + 1e-7)
    ball.check_point(y)  # projected outputs are valid inputs
    assert np.all(ball.is_on_manifold(y))
    assert not ball.is_on_manifold(np.array([1.0, 0.0]))


# -------------------------------------------------------------------------------------- Sphere
@pytest.mark.parametrize("radius", [1.0, 2.5])
def test_sphere_identities_and_reference(rng, radius):
    sph = Sphere(radius)
    x = sph.proj(rng.normal(size=(40, 5)))
    y = sph.proj(rng.normal(size=(40, 5)))
    z = sph.proj(rng.normal(size=(40, 5)))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), radius)
    cos = np.clip(np.sum(x * y, 1) / radius**2, -1, 1)
    np.testing.assert_allclose(sph.dist(x, y), radius * np.arccos(cos), rtol=1e-9)
    np.testing.assert_array_equal(sph.dist(x, x), 0)
    np.testing.assert_allclose(sph.dist(x, y), sph.dist(y, x))
    assert np.all(sph.dist(x, z) <= sph.dist(x, y) + sph.dist(y, z) + 1e-10)
    np.testing.assert_allclose(sph.dist(x, -x), np.pi * radius, rtol=1e-12)
    u = sph.proju(x, rng.normal(size=(40, 5)) * 0.5)
    np.testing.assert_allclose(np.sum(u * x, 1), 0, atol=1e-12)
    e = sph.expmap(x, u)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), radius, rtol=1e-12)
    np.testing.assert_allclose(sph.dist(x, e), np.linalg.norm(u, axis=1), rtol=1e-9)
    np.testing.assert_allclose(sph.logmap(x, e), u, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(sph.expmap(x, sph.logmap(x, y)), y, rtol=1e-7, atol=1e-9)
    # expmap0 / logmap0 at the pole r e_0
    t = rng.normal(size=(40, 5)) * 0.4
    t[:, 0] = 0
    np.testing.assert_allclose(sph.logmap0(sph.expmap0(t)), t, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sph.expmap0(sph.logmap0(y)), y, rtol=1e-7, atol=1e-9)
    # parallel transport: stays tangent, preserves inner products, maps log_x y to -log_y x
    v = sph.proju(x, rng.normal(size=(40, 5)))
    tu, tv = sph.transp(x, y, u), sph.transp(x, y, v)
    np.testing.assert_allclose(np.sum(tu * y, 1), 0, atol=1e-10)
    np.testing.assert_allclose(sph.inner(y, tu, tv), sph.inner(x, u, v), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sph.transp(x, y, sph.logmap(x, y)), -sph.logmap(y, x), rtol=1e-6, atol=1e-8)
    assert sph.curvature() == pytest.approx(1 / radius**2)


def test_sphere_kernel_and_errors(rng):
    sph = Sphere(2.0)
    pts = sph.proj(rng.normal(size=(600, 4)).astype(np.float32))
    assert pts.dtype == np.float32
    q = pts[0]
    want = 2.0 * np.arccos(np.clip(pts.astype(np.float64) @ q.astype(np.float64) / 4, -1, 1))
    d = sph.dist(q, pts)
    assert d.dtype == np.float32
    np.testing.assert_allclose(d, want, atol=2e-3)
    assert d[0] == 0
    with pytest.raises(InvalidInputError, match="not on the sphere"):
        sph.dist(np.array([1.0, 0, 0, 0]), pts[:3])
    with pytest.raises(InvalidInputError):
        sph.proj(np.zeros((2, 4)))
    with pytest.raises(InvalidInputError):
        Sphere(0)


# ---------------------------------------------------------------------------- Euclidean, Product
def test_euclidean(rng):
    eu = Euclidean()
    x, y, u = rng.normal(size=(3, 10, 4))
    np.testing.assert_allclose(eu.dist(x, y), np.linalg.norm(x - y, axis=1))
    np.testing.assert_allclose(eu.expmap(x, u), x + u)
    np.testing.assert_allclose(eu.logmap(x, y), y - x)
    np.testing.assert_allclose(eu.inner(x, u, y), np.sum(u * y, 1))
    np.testing.assert_allclose(eu.transp(x, y, u), u)
    assert eu.curvature() == 0.0


def test_product(rng):
    ball, sph, eu = PoincareBall(2.0), Sphere(1.5), Euclidean()
    prod = Product([ball, sph, eu], [3, 4, 2])
    assert prod.dim == 9
    n = 25
    xb, yb = ball_points(rng, n, 3, 2.0), ball_points(rng, n, 3, 2.0)
    xs, ys = sph.proj(rng.normal(size=(n, 4))), sph.proj(rng.normal(size=(n, 4)))
    xe, ye = rng.normal(size=(2, n, 2))
    x = np.concatenate([xb, xs, xe], 1)
    y = np.concatenate([yb, ys, ye], 1)
    want = np.sqrt(ref_dist(xb, yb, 2.0) ** 2
                   + (1.5 * np.arccos(np.clip(np.sum(xs * ys, 1) / 1.5**2, -1, 1))) ** 2
                   + np.sum((xe - ye) ** 2, 1))
    np.testing.assert_allclose(prod.dist(x, y), want, rtol=1e-9)
    np.testing.assert_allclose(prod.dist(x, x), 0, atol=1e-7)
    np.testing.assert_allclose(prod.dist(x[0], y), prod.dist(np.repeat(x[:1], n, axis=0), y))
    np.testing.assert_allclose(prod.expmap(x, prod.logmap(x, y)), y, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(prod.logmap0(prod.expmap0(prod.logmap0(y))), prod.logmap0(y), rtol=1e-7, atol=1e-9)
    u = prod.proju(x, rng.normal(size=(n, 9)) * 0.3)
    np.testing.assert_allclose(prod.inner(x, u, u),
                               ball.inner(xb, u[:, :3], u[:, :3]) + np.sum(u[:, 3:] ** 2, 1), rtol=1e-10)
    assert prod.curvature() == (-2.0, 1 / 1.5**2, 0.0)
    bad = x.copy()
    bad[0, 3:7] *= 2  # sphere component off the sphere
    with pytest.raises(InvalidInputError, match="component 1"):
        prod.dist(bad, y)
    with pytest.raises(DimensionMismatchError):
        prod.dist(x[:, :8], y[:, :8])
    with pytest.raises(InvalidInputError):
        Product([ball, sph], [3])
    with pytest.raises(InvalidInputError):
        Product([ball], [0])
    p = prod.proj(np.concatenate([xb * 10, xs * 3, xe], 1))
    assert np.all(prod.is_on_manifold(p))
    rebuilt = from_description(prod.describe())
    np.testing.assert_allclose(rebuilt.dist(x, y), want, rtol=1e-9)


def test_public_access():
    assert rga.manifold.PoincareBall is PoincareBall
    assert rga.manifold.Sphere is Sphere and rga.manifold.Product is Product and rga.manifold.Euclidean is Euclidean


# ----------------------------------------------------------------------------- geoopt comparison
@pytest.mark.torch
@pytest.mark.parametrize("c", CS)
def test_against_geoopt(rng, c):
    torch = pytest.importorskip("torch")
    geoopt = pytest.importorskip("geoopt")
    gball = geoopt.PoincareBall(c=torch.tensor(c, dtype=torch.float64))  # float32 c would round c
    ball = PoincareBall(c)
    x = ball_points(rng, 20, 4, c, 0.9)
    y = ball_points(rng, 20, 4, c, 0.9)
    u = rng.normal(size=(20, 4)) * 0.5
    m = rng.normal(size=(3, 4))
    T = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    np.testing.assert_allclose(ball.dist(x, y), gball.dist(T(x), T(y)).numpy(), rtol=1e-9)
    np.testing.assert_allclose(ball.mobius_add(x, y), gball.mobius_add(T(x), T(y)).numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ball.expmap(x, u), gball.expmap(T(x), T(u)).numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ball.logmap(x, y), gball.logmap(T(x), T(y)).numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ball.expmap0(u), gball.expmap0(T(u)).numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ball.logmap0(y), gball.logmap0(T(y)).numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ball.transp(x, y, u), gball.transp(T(x), T(y), T(u)).numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ball.mobius_scalar_mul(0.3, x), gball.mobius_scalar_mul(torch.tensor(0.3, dtype=torch.float64), T(x)).numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ball.mobius_matvec(m, x), gball.mobius_matvec(T(m), T(x)).numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ball.lambda_x(x), gball.lambda_x(T(x)).numpy(), rtol=1e-12)
    # geoopt's inner needs keepdim=True here (keepdim=False broadcasts [N,1] * [N] to [N, N])
    np.testing.assert_allclose(ball.inner(x, u, y), gball.inner(T(x), T(u), T(y), keepdim=True).numpy()[:, 0],
                               rtol=1e-10)
    big = rng.normal(size=(20, 4)) * 5
    np.testing.assert_allclose(ball.proj(big), gball.projx(T(big)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(ball.proj(big.astype(np.float32)),
                               gball.projx(torch.tensor(big, dtype=torch.float32)).numpy(), rtol=1e-6)


# ------------------------------------------------------------------------ property-based checks
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(c=st.floats(0.05, 4.0), seed=st.integers(0, 2**31 - 1), scale=st.floats(0.05, 0.97))
def test_poincare_properties_random(c, seed, scale):
    rng = np.random.default_rng(seed)
    ball = PoincareBall(c)
    x, y, z = (ball_points(rng, 1, 3, c, scale)[0] for _ in range(3))
    dxy, dyz, dxz = ball.dist(x, y), ball.dist(y, z), ball.dist(x, z)
    assert dxz <= dxy + dyz + 1e-9 * (1 + dxz)
    assert abs(dxy - ball.dist(y, x)) <= 1e-9 * (1 + dxy)
    np.testing.assert_allclose(dxy, ref_dist(x, y, c), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ball.expmap(x, ball.logmap(x, y), project=False), y, rtol=1e-6, atol=1e-8)
    # the distance is invariant under the Möbius isometry y -> (-x) (+) y
    np.testing.assert_allclose(ball.dist(ball.mobius_add(-x, y, project=False), ball.mobius_add(-x, z, project=False)),
                               dyz, rtol=1e-6, atol=1e-8)


@pytest.mark.torch
def test_sphere_and_product_against_geoopt(rng):
    torch = pytest.importorskip("torch")
    geoopt = pytest.importorskip("geoopt")
    T = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    sph, gs = Sphere(1.0), geoopt.Sphere()
    x = sph.proj(rng.normal(size=(20, 5)))
    y = sph.proj(rng.normal(size=(20, 5)))
    u = sph.proju(x, rng.normal(size=(20, 5)) * 0.7)
    # geoopt clamps the cosine at 1 - 1e-7 (float64): equal for points not extremely close
    np.testing.assert_allclose(sph.dist(x, y), gs.dist(T(x), T(y)).numpy(), rtol=1e-9)
    np.testing.assert_allclose(sph.expmap(x, u), gs.expmap(T(x), T(u)).numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sph.logmap(x, y), gs.logmap(T(x), T(y)).numpy(), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(sph.proju(x, y), gs.proju(T(x), T(y)).numpy(), rtol=1e-10, atol=1e-12)
    ball = PoincareBall(1.0)
    prod = Product([ball, sph], [3, 5])
    gprod = geoopt.ProductManifold((geoopt.PoincareBall(c=torch.tensor(1.0, dtype=torch.float64)), 3), (gs, 5))
    xb, yb = ball_points(rng, 20, 3, 1.0), ball_points(rng, 20, 3, 1.0)
    px, py = np.concatenate([xb, x], 1), np.concatenate([yb, y], 1)
    np.testing.assert_allclose(prod.dist(px, py), gprod.dist(T(px), T(py)).numpy(), rtol=1e-9)
