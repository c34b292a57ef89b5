"Tests of wdim_nb.stein against ground truth: analytic Gaussian scores and entropies, the correlated-Gaussian MI gradient, JL."
import math

import pytest
import torch
import torch.nn.functional as F

from wdim_nb.stein import entropy_surrogate, mige, random_projection, ssge, CIRCUMSTANCES


def gaussian_case(d, M, seed=0, dtype=torch.float64):
    "Samples of N(0, Sigma) with a full Sigma (random rotation, std 0.7..1.4), true scores, interior mask."
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=dtype))
    A = Q @ torch.diag(torch.linspace(0.7, 1.4, d, dtype=dtype))
    X = torch.randn(M, d, generator=g, dtype=dtype) @ A.mT
    score = -X @ torch.linalg.inv(A @ A.mT)
    maha = (score * -X).sum(-1)
    return X, score, maha < maha.median()


def toy_grad(rho, d, n, seed, **options):
    "MIGE estimate of dI/drho on x ~ N(0, I), y = rho x + sqrt(1 - rho^2) eps (MIGE Sec. 4)."
    g = torch.Generator().manual_seed(seed)
    r = torch.tensor(rho, dtype=torch.float64, requires_grad=True)
    x, e = torch.randn(2, n, d, generator=g, dtype=torch.float64)
    mige(x, r * x + (1 - r ** 2).sqrt() * e, **options).backward()
    return r.grad.item()


@pytest.mark.parametrize("d", [2, 5, 10])
def test_ssge_matches_gaussian_score(d):
    X, score, inner = gaussian_case(d, 600)
    est = ssge(X)
    assert F.cosine_similarity(est[inner], score[inner]).mean() > 0.95
    assert (est - score)[inner].norm() / score[inner].norm() < 0.35


def test_ssge_truncation_matters():
    "All eigenpairs (no truncation) must be much worse than the default: the 1/lambda^2 blow-up."
    X, score, inner = gaussian_case(2, 300)
    rel = lambda e: ((e - score)[inner].norm() / score[inner].norm()).item()
    assert rel(ssge(X, n_eigen=300)) > 1 > 0.4 > rel(ssge(X))


def test_ssge_float32_queries_batch():
    X, score, inner = gaussian_case(5, 300)
    ref = ssge(X, n_eigen=10)
    assert ssge(X.float(), n_eigen=10).dtype == torch.float32
    torch.testing.assert_close(ssge(X.float(), n_eigen=10).double(), ref, atol=1e-3 * ref.abs().max().item(), rtol=0)
    torch.testing.assert_close(ssge(X, X[:7], n_eigen=10), ref[:7])  # a query's estimate ignores other queries
    both = ssge(torch.stack([X, 2 * X]), n_eigen=10)
    torch.testing.assert_close(both[0], ref)
    torch.testing.assert_close(both[1], ref / 2)  # score of 2x at 2x = score of x at x / 2


def test_ssge_projection_with_large_k_is_close_to_plain():
    X, score, inner = gaussian_case(5, 400)
    torch.manual_seed(0)
    est = ssge(X, proj_dim=400)
    assert F.cosine_similarity(est[inner], score[inner]).mean() > 0.9
    assert est.shape == X.shape


def test_random_projection_johnson_lindenstrauss():
    n, d, k, eps = 50, 2000, 256, 0.5
    assert k >= 4 * math.log(n) / (eps ** 2 / 2 - eps ** 3 / 3)
    X = torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ratio = torch.pdist(random_projection(X, k, generator=torch.Generator().manual_seed(2))).square() / torch.pdist(X).square()
    assert ((ratio > 1 - eps) & (ratio < 1 + eps)).all()
    assert abs(ratio.mean().item() - 1) < 0.05


def test_entropy_surrogate_gaussian_scale():
    "H(sigma * eps) = d log sigma + c, so dH/dsigma = d / sigma."
    sigma = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    eps = torch.randn(500, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    entropy_surrogate(sigma * eps).backward()
    assert abs(sigma.grad.item() - 2.0) < 0.2


@pytest.mark.parametrize("rho", [-0.5, 0.5])
def test_mige_correlated_gaussian_gradient(rho):
    "d = 5: mean of 3 estimates within 15% of rho d / (1 - rho^2)."
    true = rho * 5 / (1 - rho ** 2)
    est = sum(toy_grad(rho, 5, 400, s) for s in range(3)) / 3
    assert abs(est - true) < 0.15 * abs(true)


def test_mige_gradient_is_score_difference():
    "d/dz of the circumstance-I surrogate = (joint score's z part - marginal score) / B: the sign convention."
    g = torch.Generator().manual_seed(0)
    x, z = torch.randn(64, 3, generator=g, dtype=torch.float64), torch.randn(64, 2, generator=g, dtype=torch.float64)
    z.requires_grad_(True)
    mige(x, z, n_eigen=8).backward()
    expect = (ssge(torch.cat([x, z.detach()], -1), n_eigen=8)[:, 3:] - ssge(z.detach(), n_eigen=8)) / 64
    torch.testing.assert_close(z.grad, expect)


def test_mige_circumstance_ii_scale_invariance():
    "I(c x; y) does not depend on c, but H(c x) and H(c x, y) do: II must give dI/dc ~ 0."
    g = torch.Generator().manual_seed(0)
    r = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    c = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    x, e = torch.randn(2, 400, 5, generator=g, dtype=torch.float64)
    mige(c * x, r * x + (1 - r ** 2).sqrt() * e, circumstance="II").backward()
    assert abs(c.grad.item()) < 0.1
    assert abs(r.grad.item() - 0.5 * 5 / 0.75) < 0.6


def test_mige_circumstance_iii_stochastic_encoder():
    g = torch.Generator().manual_seed(0)
    r = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    x = torch.randn(48, 1, 5, generator=g, dtype=torch.float64)
    e = torch.randn(48, 16, 5, generator=g, dtype=torch.float64)
    mige(x[:, 0], r * x + (1 - r ** 2).sqrt() * e, circumstance="III").backward()
    assert 0.5 * 10 / 3 < r.grad.item() < 1.2 * 10 / 3   # loose: the conditional score from 16 draws is shrunk


def test_mige_projection_reaches_z():
    z = torch.randn(64, 4, requires_grad=True)
    mige(torch.randn(64, 3, 8, 8), z, proj_dim=16).backward()
    assert z.grad.shape == (64, 4) and torch.isfinite(z.grad).all()


def test_errors():
    X = torch.randn(20, 3)
    with pytest.raises(ValueError, match="fewer samples than eigenvectors"): ssge(X, n_eigen=21)
    with pytest.raises(ValueError, match="NaN"): ssge(torch.full((10, 3), float("nan")))
    with pytest.raises(ValueError, match="NaN"): ssge(X, torch.tensor([[0.0, float("inf"), 0.0]]))
    with pytest.raises(ValueError, match="dimension"): ssge(X, torch.randn(4, 2))
    with pytest.raises(ValueError, match="batch shape"): ssge(X, torch.randn(2, 4, 3))
    with pytest.raises(ValueError, match="not both"): ssge(X, n_eigen=3, threshold=0.9)
    with pytest.raises(ValueError, match="threshold"): ssge(X, threshold=0.0)
    with pytest.raises(ValueError, match="identical"): ssge(torch.ones(10, 3))
    with pytest.raises(ValueError, match="at least 2"): ssge(torch.randn(1, 3))
    with pytest.raises(TypeError, match="floating"): ssge(torch.arange(30).view(10, 3))
    with pytest.raises(ValueError, match="proj_dim"): ssge(X, proj_dim=0)
    with pytest.raises(ValueError, match="valid choices"): mige(X, X, circumstance="IV")
    with pytest.raises(ValueError, match="S >= 2"): mige(X, X, circumstance="III")
    with pytest.raises(ValueError, match="batch size"): mige(X[:5], X)
    assert CIRCUMSTANCES == ("I", "II", "III")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    X, score, inner = gaussian_case(5, 300)
    torch.testing.assert_close(ssge(X.cuda(), n_eigen=10).cpu(), ssge(X, n_eigen=10), atol=1e-6, rtol=1e-6)
