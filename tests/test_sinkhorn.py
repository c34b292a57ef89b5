"Tests of wdim_nb.sinkhorn against ground truth: POT's exact ot.emd2 and ot.sinkhorn2, finite differences, gradcheck."
import warnings

import numpy as np
import ot
import pytest
import torch

from wdim_nb.sinkhorn import COSTS, EPS_REL, cost_matrix, sinkhorn, wdaa

f64 = torch.float64


def _unif(n, dtype=f64):
    return torch.full((n,), 1 / n, dtype=dtype)


def _clouds(kind, seed=0):
    g = torch.Generator().manual_seed(seed)
    if kind == "prior_vs_codes":  # WDIM's case: U[0,1]^64 prior samples vs codes in [0,1]^64
        return torch.rand(64, 64, generator=g, dtype=f64), torch.sigmoid(torch.randn(64, 64, generator=g, dtype=f64))
    if kind == "uniform64_256":
        return torch.rand(256, 64, generator=g, dtype=f64), torch.rand(256, 64, generator=g, dtype=f64)
    if kind == "gauss2d_shift":
        return torch.randn(256, 2, generator=g, dtype=f64), torch.randn(200, 2, generator=g, dtype=f64) + 1
    if kind == "gauss10d_shift":
        return torch.randn(100, 10, generator=g, dtype=f64), torch.randn(150, 10, generator=g, dtype=f64) + 0.3
    raise KeyError(kind)


@pytest.mark.parametrize("kind", ["prior_vs_codes", "uniform64_256", "gauss2d_shift", "gauss10d_shift"])
def test_default_eps_within_1pct_of_exact_ot(kind):
    x, y = _clouds(kind)
    W = ot.emd2(_unif(len(x)), _unif(len(y)), cost_matrix(x, y)).item()
    v = sinkhorn(x, y).item()
    assert abs(v - W) / W <= 0.01, (kind, v, W)
    assert v >= W * (1 - 1e-6)  # the entropic plan is feasible, so its cost is >= the optimum (up to tol)


@pytest.mark.parametrize("cost", COSTS)
def test_matches_pot_sinkhorn2_float64(cost):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 3, generator=g, dtype=f64), torch.randn(30, 3, generator=g, dtype=f64) + 0.5
    a = torch.rand(40, generator=g, dtype=f64) + 0.1; a = a / a.sum()
    b = torch.rand(30, generator=g, dtype=f64) + 0.1; b = b / b.sum()
    C = cost_matrix(x, y, cost)
    for eps in (0.05, 0.5):
        ref = ot.sinkhorn2(a, b, C, eps, method="sinkhorn_log", numItermax=100000, stopThr=1e-13).item()
        v = sinkhorn(x, y, eps, a=a, b=b, cost=cost, tol=1e-11, max_iter=20000).item()
        assert abs(v - ref) <= 1e-4 * abs(ref), (cost, eps, v, ref)


def test_plan_marginals_and_log():
    x, y = _clouds("gauss10d_shift")
    v, log = sinkhorn(x, y, 1.0, tol=1e-9, max_iter=5000, log=True)
    P = log["plan"]
    torch.testing.assert_close(P.sum(-1), _unif(100), atol=1e-8, rtol=0)  # exact after the last f-update
    torch.testing.assert_close(P.sum(-2), _unif(150), atol=1e-7, rtol=0)
    torch.testing.assert_close(v, (P * cost_matrix(x, y)).sum())
    assert log["err"] <= 1e-8 and log["n_iter"] >= 1 and log["n_stages"] >= 1
    assert log["value_reg"] >= v  # OT_eps = <P,C> + eps KL(P | a b) >= <P,C>


def test_batch_dims_match_loop_and_broadcast():
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(2, 3, 12, 4, generator=g, dtype=f64), torch.rand(2, 3, 9, 4, generator=g, dtype=f64)
    v = sinkhorn(x, y, 0.05, tol=1e-10, max_iter=5000)
    assert v.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(v[i, j], sinkhorn(x[i, j], y[i, j], 0.05, tol=1e-10, max_iter=5000))
    vb = sinkhorn(x, y[0, 0], 0.05, tol=1e-10, max_iter=5000)  # y broadcast over the batch
    assert vb.shape == (2, 3)
    torch.testing.assert_close(vb[1, 2], sinkhorn(x[1, 2], y[0, 0], 0.05, tol=1e-10, max_iter=5000))


def _fd_check(fun, x, h=1e-5, n_coords=6, seed=0):
    "Central finite differences of scalar fun at random coordinates of x vs autograd."
    x = x.clone().requires_grad_(True)
    fun(x).backward()
    idx = torch.randperm(x.numel(), generator=torch.Generator().manual_seed(seed))[:n_coords]
    for k in idx.tolist():
        e = torch.zeros_like(x).view(-1); e[k] = h; e = e.view_as(x)
        fd = (fun(x.detach() + e) - fun(x.detach() - e)).item() / (2 * h)
        assert abs(x.grad.view(-1)[k].item() - fd) <= 1e-5 + 1e-4 * abs(fd), (k, x.grad.view(-1)[k].item(), fd)
    return x.grad


def test_envelope_gradient_is_gradient_of_regularised_ot():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(15, 3, generator=g, dtype=f64), torch.randn(11, 3, generator=g, dtype=f64) + 1
    opts = dict(tol=1e-12, max_iter=20000)
    reg = lambda x: sinkhorn(x, y, 0.3, log=True, **opts)[1]["value_reg"]  # OT_eps, differentiable by envelope
    _fd_check(reg, x)
    # the returned <P,C> carries the same gradient: sum_j P_ij grad_x C(x_i, y_j)
    xg = x.clone().requires_grad_(True)
    sinkhorn(xg, y, 0.3, **opts).backward()
    xr = x.clone().requires_grad_(True)
    reg(xr).backward()
    torch.testing.assert_close(xg.grad, xr.grad)
    # and for the squared Euclidean cost it is 2 (a_i x_i - (P y)_i)
    _, log = sinkhorn(x, y, 0.3, log=True, **opts)
    torch.testing.assert_close(xg.grad, 2 * (x / 15 - log["plan"] @ y))


def test_debias_gradient_and_value():
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(10, 2, generator=g, dtype=f64), torch.randn(8, 2, generator=g, dtype=f64) + 0.5
    fun = lambda x: sinkhorn(x, y, 0.2, debias=True, tol=1e-12, max_iter=20000)
    _fd_check(fun, x)
    assert fun(x).item() > 0
    # S(x, x) = 0; (x, x) through the non-symmetric solver converges slowly (nearly a permutation plan) and stalls at a
    # marginal error of a few 1e-6, so the bound is the one that error allows: |value error| <= err * max C
    v, lg = sinkhorn(x, x, 0.2, debias=True, tol=1e-6, max_iter=20000, warn=False, log=True)
    assert abs(v.item()) <= lg["err"] * cost_matrix(x, x).max().item()


def test_debias_batched_solve_matches_three_solves(monkeypatch):
    "Where launches dominate (a GPU), debias solves (x,y), (x,x), (y,y) as one batch: the same value and gradient."
    import wdim_nb.sinkhorn as S
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(2, 12, 3, generator=g, dtype=f64), torch.rand(2, 12, 3, generator=g, dtype=f64)
    a = torch.rand(2, 12, generator=g, dtype=f64) + 0.1; a = a / a.sum(-1, keepdim=True)
    opts = dict(debias=True, tol=1e-10, max_iter=20000, a=a, log=True)
    def run(batched):
        monkeypatch.setattr(S, "_launch_bound", lambda x: batched)
        xg = x.clone().requires_grad_(True)
        v, lg = sinkhorn(xg, y, 0.05, **opts); v.sum().backward()
        return v, xg.grad, lg
    (v1, g1, l1), (v3, g3, l3) = run(True), run(False)
    torch.testing.assert_close(v1, v3, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(g1, g3, rtol=1e-6, atol=1e-8)
    assert l1["plan"].shape == l3["plan"].shape == (2, 12, 12) and l1["f"].shape == (2, 12)
    torch.testing.assert_close(l1["value_xx"], l3["value_xx"], rtol=1e-7, atol=1e-9)
    assert v1.min() > 0  # a divergence between different clouds


@pytest.mark.parametrize("dtype", [torch.float32, f64])
def test_euclidean_cost_zero_subgradient_at_zero_distance(dtype):
    # |x - y| has no derivative at x = y; the cost uses the minimal-norm subgradient 0, exactly, in any precision
    x = torch.randn(6, 64, generator=torch.Generator().manual_seed(7)).to(dtype).requires_grad_(True)
    D = cost_matrix(x, x, "euclidean")
    assert torch.equal(D.diagonal(), torch.zeros(6, dtype=dtype))
    D.diagonal().sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))  # not NaN, not inf, not rounding noise times 1/sqrt(tiny)
    y = x.detach().clone().requires_grad_(True)  # equal values in a different tensor, batched and broadcast
    xb = torch.stack([x.detach(), x.detach() + 1]).requires_grad_(True)
    Db = cost_matrix(xb, y, "euclidean")
    assert torch.equal(Db[0].diagonal(), torch.zeros(6, dtype=dtype))
    Db[0].diagonal().sum().backward()
    assert torch.equal(xb.grad[0], torch.zeros_like(x)) and torch.equal(y.grad, torch.zeros_like(x))


@pytest.mark.parametrize("dtype", [torch.float32, f64])
def test_euclidean_cost_gradient_away_from_zero(dtype):
    g = torch.Generator().manual_seed(8)
    x = torch.randn(5, 3, generator=g).to(dtype).requires_grad_(True)
    y = torch.randn(4, 3, generator=g).to(dtype).requires_grad_(True)
    W = torch.rand(5, 4, generator=g).to(dtype)
    (cost_matrix(x, y, "euclidean") * W).sum().backward()
    diff = (x[:, None] - y[None]).detach().double()  # ground truth: d|x_i - y_j| / dx_i = (x_i - y_j) / |x_i - y_j|
    unit = diff / diff.norm(dim=-1, keepdim=True)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(x.grad.double(), (W.double()[..., None] * unit).sum(1), **tol)
    torch.testing.assert_close(y.grad.double(), -(W.double()[..., None] * unit).sum(0), **tol)


def test_euclidean_cost_near_coincident_points():
    # within the rounding error of |x|^2 + |y|^2 - 2 x.y the distance is recomputed from the differences
    x = torch.rand(8, 64, generator=torch.Generator().manual_seed(9)) + 3.0  # far from the origin: cancellation
    y = x + 1e-4
    want = (x.double() - y.double()).norm(dim=-1)
    torch.testing.assert_close(cost_matrix(x, y, "euclidean").diagonal().double(), want, rtol=1e-3, atol=0)


def test_gradcheck_euclidean_cost_where_smooth():
    g = torch.Generator().manual_seed(10)
    x = torch.randn(5, 3, generator=g, dtype=f64, requires_grad=True)
    y = torch.randn(4, 3, generator=g, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: cost_matrix(x, y, "euclidean"), (x, y))


def test_gradcheck_unrolled():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(5, 2, generator=g, dtype=f64, requires_grad=True)
    y = torch.randn(4, 2, generator=g, dtype=f64, requires_grad=True)
    a = torch.tensor([0.1, 0.2, 0.3, 0.15, 0.25], dtype=f64)
    fun = lambda x, y: sinkhorn(x, y, 0.5, a=a, grad="unrolled", tol=0, max_iter=15, warn=False)
    assert torch.autograd.gradcheck(fun, (x, y))
    # the debiasing terms transport x onto x: C_ii = |x_i - x_i| = 0 for every x, so that entry's derivative is 0 and
    # the divergence is smooth in x and y wherever the points are distinct (as here)
    fun2 = lambda x, y: sinkhorn(x, y, 0.5, cost="euclidean", grad="unrolled", debias=True, tol=0, max_iter=10, warn=False)
    assert torch.autograd.gradcheck(fun2, (x, y))


def test_euclidean_debias_envelope_gradient():
    g = torch.Generator().manual_seed(11)
    x, y = torch.randn(8, 2, generator=g, dtype=f64), torch.randn(7, 2, generator=g, dtype=f64) + 0.5
    _fd_check(lambda x: sinkhorn(x, y, 0.3, cost="euclidean", debias=True, tol=1e-12, max_iter=20000), x)


def test_unrolled_converges_to_envelope_value():
    x, y = _clouds("gauss10d_shift")
    v1 = sinkhorn(x, y, 2.0, tol=1e-10, max_iter=5000)
    v2 = sinkhorn(x, y, 2.0, tol=1e-10, max_iter=5000, grad="unrolled")
    torch.testing.assert_close(v1, v2)


@pytest.mark.parametrize("dtype", [torch.float32, f64])
def test_finite_at_tiny_eps_uneven_weights_n_ne_m(dtype):
    g = torch.Generator().manual_seed(6)
    x = torch.rand(4, 48, 64, generator=g).to(dtype).requires_grad_(True)
    y = torch.rand(4, 31, 64, generator=g).to(dtype)
    a = torch.rand(4, 48, generator=g).to(dtype) ** 4; a[:, :3] = 0; a = a / a.sum(-1, keepdim=True)
    med = cost_matrix(x, y).detach().flatten(-2).median(-1).values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # tiny eps converges slowly; finiteness is the point
        for grad in ("envelope", "unrolled"):
            v = sinkhorn(x, y, 1e-3 * med, a=a, max_iter=50, grad=grad)
            assert v.shape == (4,) and torch.isfinite(v).all()
            gx, = torch.autograd.grad(v.sum(), x)
            assert torch.isfinite(gx).all()
        v = sinkhorn(x, y, 1e-3 * med, a=a, max_iter=50, debias=True)
        assert torch.isfinite(v).all()


def test_nonconvergence_warns_with_advice():
    x, y = _clouds("gauss2d_shift")
    with pytest.warns(RuntimeWarning, match="max_iter"):
        sinkhorn(x, y, max_iter=2, tol=1e-12)


@pytest.mark.parametrize("bad, msg", [
    (dict(y=torch.rand(5, 3)), "feature dimension"),
    (dict(a=torch.tensor([0.5, 0.7, -0.2, 0.0])), "non-negative"),
    (dict(a=torch.full((4,), 0.3)), "sum to 1"),
    (dict(a=torch.full((3,), 1 / 3)), "shape"),
    (dict(eps=0.0), "eps"),
    (dict(eps=-1.0), "eps"),
    (dict(x=torch.tensor([[0.0, float("nan")]] * 4)), "NaN"),
    (dict(cost="l1"), "sqeuclidean"),
    (dict(grad="implicit"), "envelope"),
])
def test_bad_input_raises(bad, msg):
    kw = dict(x=torch.rand(4, 2), y=torch.rand(5, 2), eps=0.1)
    kw.update(bad)
    x, y = kw.pop("x"), kw.pop("y")
    with pytest.raises(ValueError, match=msg):
        sinkhorn(x, y, **kw)


def test_bad_types_raise():
    with pytest.raises(TypeError): sinkhorn(np.zeros((3, 2)), torch.rand(3, 2))
    with pytest.raises(TypeError): sinkhorn(torch.zeros(3, 2, dtype=torch.int64), torch.zeros(3, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="eps"): wdaa(torch.rand(3, 2), torch.rand(3, 2), 0.0)


def test_wdaa_intended_matches_sinkhorn():
    x, y = _clouds("gauss10d_shift")
    v = wdaa(x, y, 5.0, max_iter=2000, err_thresh=1e-12)
    torch.testing.assert_close(v, sinkhorn(x, y, 5.0, tol=1e-12, max_iter=5000))


def test_wdaa_literal_is_the_printed_update():
    # WDIM Algorithm 1 with u0 = v0 = 1: a = K1, b = K^T 1, then u1 = a / (K v0) + u0 = 2, v1 = b / (K^T u1) + v0 = 1.5,
    # so one iteration gives P = diag(u1) K diag(v1) = 3K and <P, C> = 3 sum(K * C).
    x, y = _clouds("gauss10d_shift")
    C = cost_matrix(x, y)
    K = torch.exp(-C / 20.0)
    torch.testing.assert_close(wdaa(x, y, 20.0, max_iter=1, literal=True), 3 * (K * C).sum())
    # and it is not a transport cost: its plan's mass keeps growing, so the "distance" exceeds any pairwise cost
    assert wdaa(x, y, 20.0, literal=True) > C.max()


def test_wdaa_batched_and_float32():
    x, y = torch.rand(3, 8, 2), torch.rand(3, 6, 2)
    v = wdaa(x, y, 0.1)
    assert v.shape == (3,) and v.dtype == torch.float32 and torch.isfinite(v).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    x, y = _clouds("prior_vs_codes")
    # float64 converged far below the tolerance: the two devices agree to rounding, not to where a loose tol stopped
    opts = dict(tol=1e-9, max_iter=20000)
    v = sinkhorn(x.cuda(), y.cuda(), 0.1, **opts)
    assert v.device.type == "cuda"
    torch.testing.assert_close(v.cpu(), sinkhorn(x, y, 0.1, **opts), rtol=1e-6, atol=0)
    # float32 at the defaults on the GPU: within 1 % of exact OT (ground truth), with a finite envelope gradient
    xg = x.float().cuda().requires_grad_(True)
    v32 = sinkhorn(xg, y.float().cuda())
    v32.backward()
    W = ot.emd2(_unif(64), _unif(64), cost_matrix(x, y)).item()
    assert abs(v32.item() - W) <= 0.01 * W and torch.isfinite(xg.grad).all()
    # the debiased value, whose three problems the GPU solves as one batch
    vd = sinkhorn(x.cuda(), y.cuda(), 0.1, debias=True, **opts)
    torch.testing.assert_close(vd.cpu(), sinkhorn(x, y, 0.1, debias=True, **opts), rtol=1e-6, atol=1e-9)


def test_cost_matrix_matches_ot_dist_with_and_without_grad():
    "Built in place, the cost matrix is the same with and without autograd recording, equals ot.dist, and is differentiable."
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 20, 5, generator=g, dtype=torch.float64), torch.rand(3, 30, 5, generator=g, dtype=torch.float64)
    with torch.no_grad(): c0 = cost_matrix(x, y)
    c1 = cost_matrix(x.requires_grad_(), y)
    assert c1.requires_grad and not c0.requires_grad
    torch.testing.assert_close(c0, c1.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(c0[1], torch.as_tensor(ot.dist(x[1].detach().numpy(), y[1].numpy())), rtol=0, atol=1e-12)
    g, = torch.autograd.grad(c1.sum(), x)   # d/dx_i sum_j |x_i - y_j|^2 = 2 (m x_i - sum_j y_j)
    torch.testing.assert_close(g, 2 * (30 * x.detach() - y.sum(-2, keepdim=True)), rtol=0, atol=1e-10)
