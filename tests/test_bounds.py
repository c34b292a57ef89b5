"Tests for wdim_nb.bounds against ground truth: closed-form Gaussian MI, hand formulas, autograd of explicit objectives."
import functools
import math

import pytest
import torch
import torch.nn.functional as F

from wdim_nb.bounds import (KINDS, correlated_gaussians, fit_critic, gaussian_critic, gaussian_mi, logmeanexp,
                            mi_bound, mi_bound_pairs)


S3 = torch.tensor([[1., 0., 2.], [3., 2., -1.], [0., 1., 4.]], dtype=torch.float64)
OFF3 = ~torch.eye(3, dtype=torch.bool)


def opts(kind):
    return dict(state={}) if kind == "mine" else {}


def split(S):
    "Positives and column-wise negatives, written out independently of the module."
    B = S.shape[0]
    return S.diagonal(), torch.stack([torch.cat([S[:n, n], S[n + 1:, n]]) for n in range(B)])


# ---------------------------------------------------------------- ground truth: correlated Gaussians

@functools.lru_cache(maxsize=None)
def critic_batches(rho, d, B, R, seed=0):
    "R independent batches of optimal-critic score matrices (B, B) for correlated Gaussians, float64."
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(R):
        x, y = correlated_gaussians(B, rho, d, generator=g, dtype=torch.float64)
        out.append(gaussian_critic(x, y, rho))
    return tuple(out)


def batch_estimates(kind, rho, d, B, R, seed=0, shift=0.0):
    return torch.tensor([mi_bound(T + shift, kind, **opts(kind)).item() for T in critic_batches(rho, d, B, R, seed)],
                        dtype=torch.float64)


@pytest.mark.parametrize("rho,d", [(0.5, 2), (0.8, 3)])
@pytest.mark.parametrize("kind,shift", [("dv", 0.0), ("nwj", 1.0), ("js", 0.0), ("tuba", 0.0), ("mine", 0.0)])
def test_optimal_critic_recovers_mi(kind, shift, rho, d):
    "DV (critic T*) and NWJ (critic T*+1) estimate the closed-form MI within 4 standard errors over 12 batches."
    est = batch_estimates(kind, rho, d, B=256, R=12, shift=shift)
    se = est.std() / math.sqrt(len(est))
    truth = gaussian_mi(rho, d)
    assert abs(est.mean().item() - truth) < 4 * se.item() + 1e-3, (kind, est.mean().item(), truth, se.item())
    assert se.item() < 0.1 * truth  # the test has power: the error bar is small next to the MI


def test_wrong_shift_is_detected():
    "NWJ on T* (not T*+1) is visibly loose: the Gaussian test above can fail."
    truth = gaussian_mi(0.8, 3)
    est = batch_estimates("nwj", 0.8, 3, B=256, R=12)
    assert est.mean().item() < truth - 0.3  # NWJ(T*) = I - 1 + 1/e


def test_infonce_below_log_batch():
    g = torch.Generator().manual_seed(1)
    for B in (2, 8, 64):
        x, y = correlated_gaussians(B, 0.99, 10, generator=g, dtype=torch.float64)  # I = 19.6 nats >> log B
        v = mi_bound(gaussian_critic(x, y, 0.99), "infonce").item()
        assert v <= math.log(B) + 1e-9 and v > math.log(B) - 0.5
        S = torch.randn(B, B, generator=g, dtype=torch.float64) * 50
        assert mi_bound(S, "infonce").item() <= math.log(B) + 1e-9
    S = torch.full((5, 5), -1e4); S.fill_diagonal_(1e4)  # perfectly separated: exactly the ceiling
    assert mi_bound(S, "infonce").item() == pytest.approx(math.log(5), abs=1e-5)
    assert mi_bound(S, "infonce", exclude_positives=False).item() == pytest.approx(math.log(6 / 2), abs=1e-5)


def test_dv_beats_infonce_ceiling_at_high_mi():
    "At I = 3.3 nats > log 16, DV with the optimal critic is not capped at log B (InfoNCE is)."
    assert gaussian_mi(0.9, 4) > math.log(16) + 0.5
    dv = batch_estimates("dv", 0.9, 4, B=16, R=8)
    nce = batch_estimates("infonce", 0.9, 4, B=16, R=8)
    assert (nce <= math.log(16) + 1e-9).all()
    assert dv.mean() > math.log(16)


# ---------------------------------------------------------------- hand formulas

def test_hand_values_3x3():
    pos, neg = S3.diagonal(), S3[OFF3.T].reshape(-1)  # any order: the multiset of negatives
    joint = pos.mean()
    e = neg.exp().mean()
    assert mi_bound(S3, "dv").item() == pytest.approx((joint - e.log()).item())
    assert mi_bound(S3, "nwj").item() == pytest.approx((joint - (neg - 1).exp().mean()).item())
    assert mi_bound(S3, "js").item() == pytest.approx((1 + joint - e).item())
    assert mi_bound(S3, "tuba").item() == pytest.approx((1 + joint - e).item())
    assert mi_bound(S3, "smile", tau=1.0).item() == pytest.approx((joint - neg.clamp(-1, 1).exp().mean().log()).item())
    assert mi_bound(S3, "jsd").item() == pytest.approx((-F.softplus(-pos).mean() - F.softplus(neg).mean()).item())
    nce = sum(S3[n, n] - torch.log(S3[:, n].exp().mean()) for n in range(3)) / 3  # columns: y_n fixed
    assert mi_bound(S3, "infonce").item() == pytest.approx(nce.item())
    assert mi_bound(S3.T.contiguous(), "infonce").item() != pytest.approx(nce.item())  # orientation matters


def test_tuba_baseline():
    pos, neg = split(S3)
    la = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    v = mi_bound(S3, "tuba", log_baseline=la)
    hand = pos.mean() - ((neg.exp().mean(1) / la.exp()) + la - 1).mean()
    assert v.item() == pytest.approx(hand.item())
    g, = torch.autograd.grad(v, la)
    gh, = torch.autograd.grad(hand, la)
    torch.testing.assert_close(g, gh)
    assert mi_bound(S3, "tuba", log_baseline=1.0).item() == pytest.approx(mi_bound(S3, "nwj").item())


@pytest.mark.parametrize("kind", KINDS)
def test_square_equals_pairs(kind):
    pos, neg = split(S3)
    for excl in (True, False):
        a = mi_bound(S3, kind, exclude_positives=excl, **opts(kind))
        b = mi_bound_pairs(pos, neg, kind, exclude_positives=excl, **opts(kind))
        assert a.item() == pytest.approx(b.item())


@pytest.mark.parametrize("kind", KINDS)
def test_shared_negatives(kind):
    "pos (N, P) sharing a row of negatives equals pos (N*P,) with that row repeated P times (local DIM layout)."
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(3, 4, generator=g, dtype=torch.float64) + 2, torch.randn(3, 5, generator=g, dtype=torch.float64)
    la = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    for excl in (True, False):
        a = mi_bound_pairs(pos, neg, kind, exclude_positives=excl, log_baseline=la, **opts(kind))
        nrep = neg.repeat_interleave(4, 0)
        if not excl: nrep = torch.cat([pos.repeat_interleave(4, 0), nrep], 1)  # all P positives of the row
        b = mi_bound_pairs(pos.reshape(-1), nrep, kind, log_baseline=la.repeat_interleave(4), **opts(kind))
        assert a.item() == pytest.approx(b.item())


def test_exclude_positives_hand():
    "DIM App. A.2: with positives included, column n's negatives are all B entries of column n."
    pos = S3.diagonal()
    allneg = S3.reshape(-1)
    assert mi_bound(S3, "dv", exclude_positives=False).item() == pytest.approx(
        (pos.mean() - allneg.exp().mean().log()).item())
    assert mi_bound(S3, "jsd", exclude_positives=False).item() == pytest.approx(
        (-F.softplus(-pos).mean() - F.softplus(allneg).mean()).item())
    # including positives among the negatives lowers DV here (positives score higher than negatives)
    assert mi_bound(S3, "dv", exclude_positives=False) < mi_bound(S3, "dv")


# ---------------------------------------------------------------- value vs gradient

def test_js_value_nwj_gradient_jsd():
    S = S3.clone().requires_grad_()
    v = mi_bound(S, "js")
    g, = torch.autograd.grad(v, S)
    gj, = torch.autograd.grad(mi_bound(S, "jsd"), S)
    torch.testing.assert_close(g, gj)
    gn, = torch.autograd.grad(mi_bound(S, "tuba"), S)  # NWJ on T+1 has a different gradient
    assert not torch.allclose(g, gn)


@pytest.mark.parametrize("kind", KINDS)
def test_regulariser_changes_gradient_not_value(kind):
    S = S3.clone().requires_grad_()
    v0 = mi_bound(S, kind, **opts(kind))
    g0, = torch.autograd.grad(v0, S)
    v1, info = mi_bound(S, kind, remine_lambda=0.1, log=True, **opts(kind))
    g1, = torch.autograd.grad(v1, S)
    assert v0.item() == v1.item()
    assert not torch.allclose(g0, g1)
    trained = mi_bound(S3, "jsd" if kind == "js" else kind, **opts(kind)).item()  # the unpenalised objective
    assert info["regulariser"].item() > 0
    assert info["objective"].item() == pytest.approx(trained - 0.1 * info["regulariser"].item())


def test_regulariser_matches_explicit_objective():
    "ReMINE Eq. 14 (DV, Euclidean, C*) and Eq. 15 (NWJ, log-Euclidean, C* = 1) written out and differentiated."
    pos, neg = split(S3)
    for kind, lam, C in (("dv", 0.1, 0.0), ("dv", 0.01, 2.0), ("nwj", 0.1, None), ("smile", 0.1, 0.0)):
        S = S3.clone().requires_grad_()
        v = mi_bound(S, kind, remine_lambda=lam, remine_target=C, **({"tau": 1.5} if kind == "smile" else {}))
        g, = torch.autograd.grad(v, S)
        T = S3.clone().requires_grad_()
        p, n = T.diagonal(), T[OFF3]
        if kind == "dv": obj = p.mean() - logmeanexp(n) - lam * (logmeanexp(n) - C) ** 2
        # tau = 1.5 keeps every score off the clip's kinks (scores are integers): the derivative is defined there
        if kind == "smile": obj = p.mean() - logmeanexp(n.clamp(-1.5, 1.5)) - lam * (logmeanexp(n) - C) ** 2  # unclipped
        if kind == "nwj": obj = p.mean() - (n - 1).exp().mean() - lam * torch.log((n - 1).exp().mean()) ** 2
        gh, = torch.autograd.grad(obj, T)
        torch.testing.assert_close(g, gh)


def test_smile_regulariser_reaches_clipped_scores():
    "ReMINE Sec. 4: clipped negatives get no gradient from SMILE, but do from the regulariser."
    S = torch.tensor([[5., -20.], [-30., 6.]], dtype=torch.float64, requires_grad=True)
    g0, = torch.autograd.grad(mi_bound(S, "smile", tau=10.0), S)
    g1, = torch.autograd.grad(mi_bound(S, "smile", tau=10.0, remine_lambda=0.1), S)
    assert g0[0, 1] == 0 and g0[1, 0] == 0
    assert g1[0, 1] != 0 and g1[1, 0] != 0


def test_clip_tau_hand():
    "ReMINE Table 1: NWJ and TUBA clip the scores in the exponential term to [-tau, tau]; the joint term is not clipped."
    pos, neg = split(S3)  # negatives {3, 0, 0, 1, 2, -1}: tau = 0.5 clips all but the zeros, from both sides
    joint = pos.mean()
    ec = neg.clamp(-0.5, 0.5).exp()
    assert mi_bound(S3, "nwj", clip_tau=0.5).item() == pytest.approx((joint - (ec / math.e).mean()).item())
    assert mi_bound(S3, "tuba", clip_tau=0.5).item() == pytest.approx((1 + joint - ec.mean()).item())
    la = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    hand = joint - (ec.mean(1) / la.exp() + la - 1).mean()
    assert mi_bound(S3, "tuba", clip_tau=0.5, log_baseline=la).item() == pytest.approx(hand.item())
    # the paper's tau = 10 leaves these scores alone, and None (default) is the plain bound
    for kind in ("nwj", "tuba"):
        assert mi_bound(S3, kind, clip_tau=10.0).item() == mi_bound(S3, kind).item()
    big = torch.tensor([[20., 30.], [-40., 5.]], dtype=torch.float64)
    assert mi_bound(big, "nwj", clip_tau=10.0).item() == pytest.approx(12.5 - (math.exp(9) + math.exp(-11)) / 2)


def test_clip_tau_regulariser_on_unclipped():
    "ReMINE Sec. 4: the loss is clipped, the log-Euclidean regulariser acts on the unclipped partition."
    lam, tau = 0.1, 1.5  # integer scores stay off the clip's kinks at +-1.5
    for kind in ("nwj", "tuba"):
        S = S3.clone().requires_grad_()
        v, info = mi_bound(S, kind, clip_tau=tau, remine_lambda=lam, log=True)
        g, = torch.autograd.grad(v, S)
        T = S3.clone().requires_grad_()
        p, n = T.diagonal(), T[OFF3]
        shift = 1.0 if kind == "nwj" else 0.0
        loss = p.mean() - (n.clamp(-tau, tau) - shift).exp().mean() + (1 - shift)
        obj = loss - lam * logmeanexp(n - shift) ** 2
        gh, = torch.autograd.grad(obj, T)
        torch.testing.assert_close(g, gh)
        assert v.item() == pytest.approx(loss.item())
        assert info["log_partition"].item() == pytest.approx(logmeanexp(S3[OFF3].clamp(-tau, tau) - shift).item())
        assert info["regulariser"].item() == pytest.approx((logmeanexp(S3[OFF3] - shift) ** 2).item())
    # clipped negatives: no gradient from the loss alone
    S = torch.tensor([[20., 30.], [-40., 5.]], dtype=torch.float64, requires_grad=True)
    g0, = torch.autograd.grad(mi_bound(S, "nwj", clip_tau=10.0), S)
    assert g0[0, 1] == 0 and g0[1, 0] == 0


def test_nwj_euclidean_distance():
    S = S3.clone().requires_grad_()
    v = mi_bound(S, "nwj", remine_lambda=0.5, remine_distance="euclidean", remine_target=1.0)
    g, = torch.autograd.grad(v, S)
    T = S3.clone().requires_grad_()
    n = T[OFF3]
    obj = T.diagonal().mean() - (n - 1).exp().mean() - 0.5 * ((n - 1).exp().mean() - 1) ** 2
    gh, = torch.autograd.grad(obj, T)
    torch.testing.assert_close(g, gh)


def test_mine_moving_average_gradient():
    "Belghazi et al. 2018: grad = mean_P grad T - mean_Q(e^T grad T) / m_t, m_t = (1-a) m_{t-1} + a mean_Q e^T."
    a = 0.1
    Sa = S3
    Sb = torch.tensor([[0., 1., -2.], [2., 1., 0.5], [1., 3., 2.]], dtype=torch.float64)
    state = {}
    mi_bound(Sa, "mine", state=state, ma_rate=a)
    ma_a = Sa[OFF3].exp().mean()
    assert state["log_ma"].item() == pytest.approx(ma_a.log().item())
    S = Sb.clone().requires_grad_()
    v = mi_bound(S, "mine", state=state, ma_rate=a)
    g, = torch.autograd.grad(v, S)
    m = (1 - a) * ma_a + a * Sb[OFF3].exp().mean()
    hand = torch.zeros(3, 3, dtype=torch.float64)
    hand[~OFF3] = 1 / 3
    hand[OFF3] = -Sb[OFF3].exp() / 6 / m
    torch.testing.assert_close(g, hand)
    assert state["log_ma"].item() == pytest.approx(m.log().item())
    assert v.item() == pytest.approx(mi_bound(Sb, "dv").item())  # reported value is plain DV
    gd, = torch.autograd.grad(mi_bound(S, "dv"), S)
    assert not torch.allclose(g, gd)


# ---------------------------------------------------------------- numerics, dtype, device

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_finite_extremes(kind, dtype):
    g = torch.Generator().manual_seed(0)
    for S in (torch.randn(6, 6, generator=g, dtype=dtype) * 1e4, torch.full((4, 4), 1e4, dtype=dtype),
              torch.full((4, 4), -1e4, dtype=dtype)):
        for lam in (0.0, 0.1):
            S = S.clone().requires_grad_()
            v, info = mi_bound(S, kind, remine_lambda=lam, log=True, **opts(kind))
            gr, = torch.autograd.grad(v, S)
            assert v.dtype == dtype and v.shape == ()
            assert torch.isfinite(v) and torch.isfinite(gr).all(), (kind, dtype, lam)
            assert all(torch.isfinite(t).all() for t in info.values() if torch.is_tensor(t))


def test_log_dict():
    v, info = mi_bound(S3, "dv", log=True)
    assert {"joint", "log_partition", "objective", "regulariser"} <= set(info)
    assert info["joint"].item() == pytest.approx(7 / 3)
    assert info["log_partition"].item() == pytest.approx(logmeanexp(S3[OFF3]).item())
    assert info["objective"].item() == pytest.approx(v.item())
    assert not info["joint"].requires_grad


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda():
    S = S3.float().cuda().requires_grad_()
    for k in KINDS:
        v = mi_bound(S, k, remine_lambda=0.1, **opts(k))
        assert v.device.type == "cuda"
        assert v.item() == pytest.approx(mi_bound(S3.float(), k, remine_lambda=0.1, **opts(k)).item(), rel=1e-5)
        v.backward()


# ---------------------------------------------------------------- errors

def test_errors():
    with pytest.raises(ValueError, match="choose one of"): mi_bound(S3, "mien")
    with pytest.raises(ValueError, match="square"): mi_bound(torch.zeros(3, 4), "dv")
    with pytest.raises(ValueError, match="B >= 2"): mi_bound(torch.zeros(1, 1), "dv")
    with pytest.raises(ValueError, match="square"): mi_bound(torch.zeros(3), "dv")
    with pytest.raises(TypeError, match="floating"): mi_bound(torch.zeros(3, 3, dtype=torch.long), "dv")
    with pytest.raises(TypeError, match="Tensor"): mi_bound([[1., 0.], [0., 1.]], "dv")
    with pytest.raises(ValueError, match="NaN/inf"): mi_bound(torch.tensor([[1., float("nan")], [0., 1.]]), "dv")
    with pytest.raises(ValueError, match="NaN/inf"): mi_bound(torch.tensor([[1., float("inf")], [0., 1.]]), "jsd")
    with pytest.raises(ValueError, match=r"\(N, K\)"): mi_bound_pairs(torch.zeros(3), torch.zeros(4, 2), "dv")
    with pytest.raises(ValueError, match=r"\(N, K\)"): mi_bound_pairs(torch.zeros(3, 1, 1), torch.zeros(3, 2), "dv")
    with pytest.raises(ValueError, match=r"\(N, K\)"): mi_bound_pairs(torch.zeros(3), torch.zeros(3, 0), "dv")
    with pytest.raises(ValueError, match="dtype"): mi_bound_pairs(torch.zeros(3), torch.zeros(3, 2).double(), "dv")
    with pytest.raises(ValueError, match="state"): mi_bound(S3, "mine")
    with pytest.raises(ValueError, match="ma_rate"): mi_bound(S3, "mine", state={}, ma_rate=0)
    with pytest.raises(ValueError, match="tau"): mi_bound(S3, "smile", tau=-1)
    with pytest.raises(ValueError, match="clip_tau must be positive"): mi_bound(S3, "nwj", clip_tau=0.0)
    with pytest.raises(ValueError, match="nwj and tuba"): mi_bound(S3, "smile", clip_tau=10.0)
    with pytest.raises(ValueError, match="nwj and tuba"): mi_bound(S3, "js", clip_tau=10.0)
    with pytest.raises(ValueError, match="log_baseline"): mi_bound(S3, "tuba", log_baseline=torch.zeros(2))
    with pytest.raises(ValueError, match="remine_distance"): mi_bound(S3, "dv", remine_distance="l1")
    with pytest.raises(ValueError, match="euclidean"): mi_bound(S3, "dv", remine_lambda=0.1, remine_distance="log_euclidean")
    with pytest.raises(ValueError, match="remine_target"): mi_bound(S3, "nwj", remine_lambda=0.1, remine_target=0.0)
    with pytest.raises(ValueError, match="remine_lambda"): mi_bound(S3, "dv", remine_lambda=-1.0)
    with pytest.raises(TypeError): mi_bound(S3, "dv", exclude_positive=True)  # typo is not silently ignored


# ---------------------------------------------------------------- Gaussian helpers

def test_gaussian_helpers():
    assert gaussian_mi(0.5, 2) == pytest.approx(-math.log(0.75))
    assert gaussian_mi(0.0, 5) == 0.0
    with pytest.raises(ValueError): gaussian_mi(1.0, 1)
    with pytest.raises(ValueError): correlated_gaussians(3, -1.0, 1)
    x, y = correlated_gaussians(10000, 0.6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert x.shape == y.shape == (10000, 2) and x.dtype == torch.float64
    c = ((x - x.mean(0)) * (y - y.mean(0))).mean(0) / (x.std(0) * y.std(0))
    # sample correlation: standard error (1 - rho^2) / sqrt(n); 4 of them, whatever stream the generator yields
    torch.testing.assert_close(c, torch.full((2,), 0.6, dtype=torch.float64), atol=4 * (1 - 0.36) / 100, rtol=0)
    x1, _ = correlated_gaussians(5, 0.6, 2, generator=torch.Generator().manual_seed(3))
    x2, _ = correlated_gaussians(5, 0.6, 2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(x1, x2)
    # the critic is the log density ratio: its mean over joint samples is the MI
    T = gaussian_critic(x[:1000], y[:1000], 0.6)
    assert T.diagonal().mean().item() == pytest.approx(gaussian_mi(0.6, 2), abs=4 * T.diagonal().std().item() / 1000 ** 0.5)
    # and E_Q[e^T*] = 1 over off-diagonal pairs
    assert T[~torch.eye(1000, dtype=torch.bool)].exp().mean().item() == pytest.approx(1.0, abs=0.05)


# ---------------------------------------------------------------- fit_critic: the critic-training loop

def quadratic_critic():
    "T(x, y) = a x.y + b (|x|^2 + |y|^2) + c: the family of the optimal Gaussian critic, started at 0."
    w = torch.zeros(3, requires_grad=True)
    def T(xy):
        x, y = xy
        sq = (x * x).sum(1)
        return w[0] * (x @ y.T) + w[1] * (sq[:, None] + (y * y).sum(1)[None, :]) + w[2]
    return T, w


def test_fit_critic_reaches_gaussian_mi():
    # the optimal critic lies in the 3-parameter family: a trained one gives the closed-form MI, an untrained one 0
    T, w = quadratic_critic()
    g = torch.Generator().manual_seed(0)
    rows = fit_critic(lambda s: correlated_gaussians(128, 0.8, 2, generator=g), T, [w], "dv", 300, lr=0.05)
    assert [r["step"] for r in rows] == list(range(300)) and rows[0]["estimate"] == 0.0
    with torch.no_grad(): held_out = mi_bound(T(correlated_gaussians(2000, 0.8, 2, generator=g)), "dv").item()
    assert held_out == pytest.approx(gaussian_mi(0.8, 2), abs=0.15)


def test_fit_critic_same_seed_same_run():
    def run():
        T, w = quadratic_critic()
        g, state = torch.Generator().manual_seed(1), {}
        return fit_critic(lambda s: correlated_gaussians(16, 0.5, 2, generator=g), T, [w], "mine", 10, lr=0.05,
                          lr_decay=0.1, state=state, terms=True), w.detach().clone()
    (r1, w1), (r2, w2) = run(), run()
    assert r1 == r2 and torch.equal(w1, w2) and not torch.equal(w1, torch.zeros(3))
    assert r1[-1]["lr"] == pytest.approx(0.05 * 0.1 ** 0.9, rel=1e-12)
    assert set(r1[0]) == {"step", "lr", "estimate", "joint", "log_partition", "max_abs_t"}


def test_fit_critic_pairs_and_extra():
    w = torch.ones(1, requires_grad=True)
    batch = lambda s: torch.arange(4.0)
    score = lambda b: (w * b, (w * b).flip(0)[:, None])  # (pos, neg) form of mi_bound_pairs
    first = mi_bound_pairs(*score(batch(0)), "jsd").item()  # before any step
    rows = fit_critic(batch, score, [w], "jsd", 2, terms=True, extra=lambda s, b, sc: dict(n=len(b), k=sc[1].shape[1]))
    assert rows[0]["estimate"] == first and rows[1]["estimate"] > first  # ascent
    assert rows[0]["max_abs_t"] == 3.0 and rows[1]["n"] == 4 and rows[1]["k"] == 1


def test_fit_critic_nonfinite():
    w = torch.ones(1, requires_grad=True)
    inf = lambda b: w * torch.full((3, 3), math.inf)
    rows = fit_critic(lambda s: None, inf, [w], "dv", 5, stop_nonfinite=True, terms=True)
    assert len(rows) == 1 and math.isnan(rows[0]["estimate"]) and rows[0]["max_abs_t"] == math.inf
    with pytest.raises(ValueError, match="NaN/inf"): fit_critic(lambda s: None, inf, [w], "dv", 5)
    assert torch.equal(w, torch.ones(1))  # no step was taken


def test_fit_critic_errors():
    w = torch.zeros(1, requires_grad=True)
    args = (lambda s: None, lambda b: w * torch.eye(2), [w])
    for steps in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="steps"): fit_critic(*args, "dv", steps)
    with pytest.raises(ValueError, match="unknown kind"): fit_critic(*args, "nce", 3)
    for decay in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="lr_decay"): fit_critic(*args, "dv", 3, lr_decay=decay)
    with pytest.raises(ValueError, match="state"): fit_critic(*args, "mine", 3)  # MINE needs its moving-average dict
