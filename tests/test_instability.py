"Tests for wdim_nb.instability against closed forms and synthetic series with known answers."
import math

import numpy as np
import ot
import pandas as pd
import pytest
import torch

from wdim_nb.bounds import gaussian_mi
from wdim_nb.models import ConcatCritic, SeparableCritic
from wdim_nb.instability import (bias_variance, drift_slope, ema, explosion_stats, gaussian_log_ratio,
                                 js_uniform_shift, optimal_critic_bound, mi_to_rho, onehot_mi, onehot_sample, run_onehot, run_staircase,
                                 staircase_mi, train_critic, wasserstein_1d)


@pytest.mark.parametrize("N", [2, 5, 16])
def test_onehot_sample_mi(N):
    x, y = onehot_sample(100_000, N, generator=torch.Generator().manual_seed(N))
    assert x.shape == (100_000, N) and torch.equal(x, y) and torch.all(x.sum(1) == 1)
    p = x.mean(0)
    # I(X; X) = H(X): the plug-in entropy of the sample is log N up to sampling error
    assert abs(-(p * p.log()).sum().item() - onehot_mi(N)) < 3e-3
    assert onehot_mi(N) == pytest.approx(math.log(N))


def test_onehot_errors():
    with pytest.raises(ValueError, match="at least 2"): onehot_sample(3, 1)


@pytest.mark.parametrize("mi", [0.5, 2.0, 4.0, 6.0, 8.0, 10.0])
@pytest.mark.parametrize("dim", [1, 20])
def test_rho_matches_closed_form_gaussian_mi(mi, dim):
    rho = mi_to_rho(mi, dim)
    assert 0 < rho < 1
    assert gaussian_mi(rho, dim) == pytest.approx(mi, abs=1e-6)  # rho ~ 1 - 1e-9 at d=1, I=10: float64 rounding
    S = torch.eye(2 * dim, dtype=torch.float64)  # joint covariance; MI = (log|Sx| + log|Sy| - log|S|) / 2
    S[:dim, dim:] = S[dim:, :dim] = rho * torch.eye(dim, dtype=torch.float64)
    assert (-0.5 * torch.logdet(S)).item() == pytest.approx(mi, abs=1e-6)  # 1 - rho^2 = e^-20 at d=1: cancellation


def test_rho_errors_and_zero():
    assert mi_to_rho(0.0) == 0.0
    with pytest.raises(ValueError, match="non-negative"): mi_to_rho(-0.1)


def test_staircase_schedule():
    assert [staircase_mi(s, 4000) for s in (0, 3999, 4000, 8000, 16000, 19999, 20000)] == [2, 2, 4, 6, 10, 10, 10]
    assert staircase_mi(5, 2, levels=(1.0, 3.0)) == 3.0


def test_drift_slope_known_slope():
    rng = np.random.default_rng(0)
    t = np.arange(4000)
    s = np.where(t < 2000, 5.0 - 0.01 * t, 0.002 * t) + 0.2 * rng.standard_normal(4000)
    assert drift_slope(s) == pytest.approx(0.002, abs=5e-5)
    assert abs(drift_slope(s, start=0.0) - 0.002) > 5e-4  # without skipping the first half the slope is wrong
    assert drift_slope(np.full(50, 2.0)) == 0.0
    s2 = 3.0 - 0.5 * t[:100].astype(float); s2[60] = np.nan  # NaNs are ignored, not propagated
    assert drift_slope(s2) == pytest.approx(-0.5)
    assert math.isnan(drift_slope([1.0, np.nan, np.nan, np.nan]))


def test_explosion_stats_detects_first_nonfinite():
    a = np.r_[np.geomspace(1, 1e30, 40), [np.inf], np.full(5, np.nan)]
    ex = explosion_stats(a)
    assert ex["first_nonfinite_step"] == 40 and ex["max_abs_t"] == pytest.approx(1e30)
    assert explosion_stats(np.ones(10), estimate=np.r_[np.zeros(7), np.nan, 0, 0])["first_nonfinite_step"] == 7
    assert explosion_stats(np.ones(10))["first_nonfinite_step"] is None


def test_ema():
    np.testing.assert_allclose(ema([0.0, 1.0, 1.0], decay=0.5), [0.0, 0.5, 0.75])
    np.testing.assert_allclose(ema([np.nan, 2.0, np.nan], decay=0.9)[1:], [2.0, 2.0])
    with pytest.raises(ValueError, match="decay"): ema([1.0], decay=1.5)


def test_bias_variance_table():
    df = pd.DataFrame(dict(loss="x", seed=0, step=np.arange(8), true_mi=[2.0] * 4 + [4.0] * 4,
                           estimate=[9.0, 9.0, 1.0, 3.0, 9.0, 9.0, 5.0, 7.0]))
    bv = bias_variance(df)  # keeps the last half of each level
    assert bv.bias.tolist() == [0.0, 2.0] and bv.variance.tolist() == [1.0, 1.0] and bv.mse.tolist() == [1.0, 5.0]
    assert bias_variance(df, tail=1.0).bias.iloc[0] == pytest.approx(3.5)
    with pytest.raises(ValueError, match="tail"): bias_variance(df, tail=0.0)


def test_critics():
    torch.manual_seed(0)
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)  # float64: a score near 0
    sep = SeparableCritic(3, 5, hidden=8, embed_dim=4).double()  # would fail a relative float32 test by rounding alone
    s = sep(x, y)
    assert s.shape == (6, 6) and torch.allclose(s[2, 5], sep.g(x[2]) @ sep.h(y[5]), rtol=1e-10, atol=1e-12)
    cat = ConcatCritic(3, 5, hidden=8, layers=2).double()
    s = cat(x, y)
    W = torch.cat([cat.wx.weight, cat.wy.weight], 1)
    ref = cat.f(torch.nn.functional.linear(torch.cat([x[4], y[1]]), W, cat.wx.bias))
    assert s.shape == (6, 6) and torch.allclose(s[4, 1], ref.squeeze(), rtol=1e-10, atol=1e-12)


def test_js_closed_form_and_exact_w():
    assert js_uniform_shift(0.5) == pytest.approx(0.5 * math.log(2)) and js_uniform_shift(7.0) == pytest.approx(math.log(2))
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(40, generator=g, dtype=torch.float64), 2 + torch.rand(40, generator=g, dtype=torch.float64)
    for p in (1, 2):
        M = ot.dist(x[:, None].numpy(), y[:, None].numpy(), metric="sqeuclidean" if p == 2 else "euclidean")
        assert wasserstein_1d(x, y, p).item() == pytest.approx(ot.emd2([], [], M), rel=1e-10)
    with pytest.raises(ValueError, match="equal size"): wasserstein_1d(x, y[:5])


def test_short_training_runs_are_finite():
    st = run_staircase("infonce", steps_per_level=3, levels=(2.0, 4.0), hidden=16, embed_dim=4, remine_lambda=1.0)
    assert len(st) == 6 and st.true_mi.tolist() == [2, 2, 2, 4, 4, 4]
    assert np.isfinite(st[["estimate", "joint", "log_partition", "max_abs_t"]].to_numpy()).all()
    oh = run_onehot("nwj", N=4, batch_size=8, steps=5, hidden=8, remine_lambda=1.0)
    assert len(oh) == 5 and np.isfinite(oh[["estimate", "t_support", "max_abs_t"]].to_numpy()).all()


def test_train_critic_learns_onehot():
    # DV on the one-hot task with N=4: the estimate must climb from ~0 towards log 4 = 1.386
    oh = run_onehot("dv", N=4, batch_size=64, steps=150, hidden=32, lr=1e-2, seed=0)
    assert oh.estimate.iloc[:5].mean() < 0.3 and oh.estimate.iloc[-20:].mean() > 0.9


def test_train_critic_stops_on_nonfinite_scores():
    class Blow(torch.nn.Module):
        def __init__(self): super().__init__(); self.a = torch.nn.Parameter(torch.ones(()))
        def forward(self, x, y): return self.a * torch.full((x.shape[0], y.shape[0]), math.inf)
    df = train_critic(lambda s: onehot_sample(4, 3), Blow(), "dv", 10)
    assert len(df) == 1 and explosion_stats(df.max_abs_t, df.estimate)["first_nonfinite_step"] == 0
    with pytest.raises(ValueError, match="steps"): train_critic(lambda s: None, Blow(), "dv", 0)


def test_gaussian_log_ratio_is_the_density_ratio_of_scipy():
    "Every pair's score is log p(y_j | x_i) - log p(y_j), computed independently with SciPy's Gaussian densities."
    from scipy.stats import multivariate_normal as mvn
    rng = np.random.default_rng(0)
    d, rho = 3, 0.7
    x, y = torch.tensor(rng.standard_normal((4, d))), torch.tensor(rng.standard_normal((5, d)))
    T = gaussian_log_ratio(x, y, rho)
    assert T.shape == (4, 5)
    ref = [[mvn(rho * xi, (1 - rho ** 2) * np.eye(d)).logpdf(yj) - mvn(np.zeros(d), np.eye(d)).logpdf(yj)
            for yj in y.numpy()] for xi in x.numpy()]
    np.testing.assert_allclose(T.numpy(), ref, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="rho"): gaussian_log_ratio(x, y, -1.0)


def test_optimal_critic_bounds_order_as_theory_says():
    "At 6 nats and batch 64 a perfect critic lets NWJ reach the truth, while InfoNCE stays under log 64."
    nwj, nce = (optimal_critic_bound(k, 6.0, batches=40) for k in ("nwj", "infonce"))
    assert abs(nwj - 6.0) < 0.5 and nce <= math.log(64) < nwj
