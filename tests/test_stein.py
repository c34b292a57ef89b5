"Tests of wdim_nb.stein against ground truth: analytic Gaussian scores and entropies, the correlated-Gaussian MI gradient, JL."
import math

import pytest
import torch
import torch.nn.functional as F

from wdim_nb.stein import entropy_surrogate, mige, random_projection, ssge, CIRCUMSTANCES, MIGE_THRESHOLD


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
    "Bars hold over seeds 0-9 with room (worst: cosine 0.91 at d = 2, relative error 0.47 at d = 10), not for one draw."
    X, score, inner = gaussian_case(d, 600)
    est = ssge(X)
    assert F.cosine_similarity(est[inner], score[inner]).mean() > 0.85
    assert (est - score)[inner].norm() / score[inner].norm() < 0.55


def test_ssge_truncation_matters():
    "All eigenpairs (no truncation) must be much worse than the default: the 1/lambda^2 blow-up."
    X, score, inner = gaussian_case(2, 300)
    rel = lambda e: ((e - score)[inner].norm() / score[inner].norm()).item()
    assert rel(ssge(X, n_eigen=300)) > 100 and rel(ssge(X)) < 0.5  # seeds 0-9: > 3e6 and < 0.39


# ---------------------------------------------------------------- the default truncation, on cases it was not tuned on
# The default (0.99 of tr K) was chosen in 03_stein on d in {2, 6, 16}, M in {200, 500, 1200}, Gaussians with standard
# deviations 0.7-1.4 and 0.3-3, a symmetric two-mode mixture and a Student-t with nu = 5. The cases below differ in
# d, M, covariance spectrum, number and weights of modes, and tail index. Queries are fresh draws (off-sample),
# compared on their denser half. Bars: below the worst of seeds 0-7 by a margin.

def _bulk_cosine_rel(X, Xq, score, logp, **options):
    "Mean cosine and relative error of ssge(X, Xq) against the true score on the denser half of the queries."
    est, true, lp = ssge(X, Xq, **options), score(Xq), logp(Xq)
    bulk = lp >= lp.median()
    return (F.cosine_similarity(est[bulk], true[bulk]).mean().item(),
            ((est - true)[bulk].norm() / true[bulk].norm()).item())


def elongated_gaussian(seed, d=4, M=800, n=400):
    "N(0, A A^T), A = rotation x diag(0.25, 0.6, 1.2, 3.0): condition number 144. -> samples, queries, score, log-density."
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    A = Q @ torch.diag(torch.tensor([0.25, 0.6, 1.2, 3.0], dtype=torch.float64))
    P = torch.linalg.inv(A @ A.mT)
    X, Xq = (torch.randn(m, d, generator=g, dtype=torch.float64) @ A.mT for m in (M, n))
    return X, Xq, lambda x: -x @ P, lambda x: -0.5 * ((x @ P) * x).sum(-1)


def three_mode_mixture(seed, d=3, M=700, n=400, s=0.8):
    "Weights 0.5, 0.3, 0.2 on N(mu_k, s^2 I), mu_k ~ N(0, 4 I)."
    g = torch.Generator().manual_seed(seed)
    mus, w = 2.0 * torch.randn(3, d, generator=g, dtype=torch.float64), torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    draw = lambda m: mus[torch.multinomial(w, m, replacement=True, generator=g)] + s * torch.randn(m, d, generator=g, dtype=torch.float64)
    logc = lambda x: w.log() - 0.5 * ((x[:, None] - mus) ** 2).sum(-1) / s ** 2    # [n, 3] log weight x density
    score = lambda x: (logc(x).softmax(-1)[..., None] * (mus - x[:, None]) / s ** 2).sum(1)  # responsibilities x scores
    return draw(M), draw(n), score, lambda x: logc(x).logsumexp(-1)


def student_t3(seed, d=5, M=900, n=400, nu=3):
    "Multivariate t with nu = 3 degrees of freedom (infinite fourth moment), identity scale."
    g = torch.Generator().manual_seed(seed)
    draw = lambda m: torch.randn(m, d, generator=g, dtype=torch.float64) / (
        torch.randn(m, nu, generator=g, dtype=torch.float64).square().sum(-1, keepdim=True) / nu).sqrt()
    return (draw(M), draw(n), lambda x: -(nu + d) * x / (nu + x.square().sum(-1, keepdim=True)),
            lambda x: -0.5 * (nu + d) * torch.log1p(x.square().sum(-1) / nu))


def test_analytic_scores_of_the_test_cases():
    "The closed-form scores are the gradients of the log-densities (autograd), so the checks below test ssge only."
    for case in (elongated_gaussian, three_mode_mixture, student_t3):
        _, Xq, score, logp = case(0, M=10, n=6)
        x = Xq.clone().requires_grad_()
        torch.testing.assert_close(torch.autograd.grad(logp(x).sum(), x)[0], score(Xq))


def test_default_truncation_elongated_gaussian():
    "Seeds 0-7: default cosine >= 0.97; MIGE's 0.94 <= 0.53 (it keeps too few eigenfunctions for the short axes)."
    case = elongated_gaussian(0)
    cos, rel = _bulk_cosine_rel(*case)
    assert cos > 0.9 and rel < 0.5
    assert _bulk_cosine_rel(*case, threshold=MIGE_THRESHOLD)[0] < 0.7


def test_default_truncation_three_mode_mixture():
    "Seeds 0-7: default cosine 0.80-0.96 (mean 0.91), MIGE's 0.94 mean 0.75; averaged over three seeds here."
    res = [_bulk_cosine_rel(*three_mode_mixture(s)) for s in range(3)]
    assert sum(c for c, _ in res) / 3 > 0.8 and max(r for _, r in res) < 0.8


def test_default_truncation_heavy_tails():
    "Seeds 0-7: default cosine >= 0.99, relative error <= 0.27."
    cos, rel = _bulk_cosine_rel(*student_t3(0))
    assert cos > 0.95 and rel < 0.4


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
    # float64 on both, but cuSOLVER and LAPACK round differently, and the truncated eigenbasis amplifies that by the
    # inverse eigen-gaps (H200 against LAPACK: 1e-4 at worst, elementwise): compare in norm, and both with the true score
    X, score, inner = gaussian_case(5, 300)
    gpu, cpu = ssge(X.cuda(), n_eigen=10).cpu(), ssge(X, n_eigen=10)
    rel = lambda e: ((e - score)[inner].norm() / score[inner].norm()).item()
    assert ((gpu - cpu).norm() / cpu.norm()).item() < 1e-3
    assert abs(rel(gpu) - rel(cpu)) < 1e-3 and rel(gpu) < 0.5
