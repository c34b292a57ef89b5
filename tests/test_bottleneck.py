"Information Bottleneck methods: the VIB KL and the MIGE gradient against closed forms, the lr schedule, fit on tiny data."
import math

import pandas as pd
import pytest
import torch

from wdim_nb.bottleneck import (IBEncoder, gaussian_kl, mige_ib_surrogate, staircase_lr, IBMIGE, IBVIB)
from wdim_nb.data import get_dataset
from wdim_nb.learner import Config, check, fit
from wdim_nb.methods import get_method

torch.set_num_threads(1)
METHODS = ("ib_baseline", "ib_vib", "ib_mine", "ib_mige")
SMALL = dict(hidden=32, z_dim=8)


def test_kl_matches_torch_closed_form_and_is_zero_at_prior():
    g = torch.Generator().manual_seed(0)
    mu, sigma = torch.randn(4, 6, generator=g, dtype=torch.float64), torch.rand(4, 6, generator=g, dtype=torch.float64) + 0.1
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, sigma), torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, sigma), ref)
    torch.testing.assert_close(gaussian_kl(torch.zeros(2, 3), torch.ones(2, 3)), torch.zeros(2))
    with pytest.raises(ValueError, match="same shape"): gaussian_kl(torch.zeros(2, 3), torch.ones(3, 3))


def channel_grad(a, d=2, s=1.0, B=128, S=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, eps = torch.randn(B, d, generator=g), torch.randn(B, S, d, generator=g)
    A = torch.tensor(float(a), requires_grad=True)
    mige_ib_surrogate(x, A * x[:, None] + s * eps).backward()
    return A.grad.item()


@pytest.mark.parametrize("a", [0.5, 1.0, 2.0])
def test_mige_gradient_on_gaussian_channel(a):
    "z = a x + eps, x ~ N(0, I_2): I = log(1 + a^2), dI/da = 2a / (1 + a^2)."
    truth = 2 * a / (1 + a * a)
    assert abs(channel_grad(a) - truth) < 0.2 * truth


def test_mige_gradient_follows_the_curve():
    "dI/da peaks at a = s: the estimate must fall from a = 1 to a = 3 and be positive (the MI grows with a)."
    g1, g3 = channel_grad(1.0), channel_grad(3.0)
    assert 0 < g3 < g1 and abs(g3 - 0.6) < 0.15


def test_mige_surrogate_needs_two_draws():
    with pytest.raises(ValueError, match="S >= 2"): mige_ib_surrogate(torch.zeros(4, 2), torch.zeros(4, 1, 2))


def test_encoder_sampling_and_taps():
    torch.manual_seed(0)
    enc = IBEncoder(6, hidden=8, z_dim=3)
    x = torch.randn(5, 1, 2, 3)
    z, mu, sigma = enc.sample(x, 7)
    assert z.shape == (5, 7, 3) and (sigma > 0).all()
    assert set(enc(x)) == {"conv", "fc", "y"} and torch.equal(enc(x)["y"], mu)
    z.sum().backward()                                     # reparameterised: gradients reach the encoder
    assert enc.head.weight.grad is not None and enc.head.weight.grad.abs().sum() > 0


def test_staircase_lr():
    assert staircase_lr(1.0, 3, 2, decay=0.5, every=1) == 0.5
    assert staircase_lr(1.0, 4, 2, decay=0.5, every=1) == 0.25
    with pytest.raises(ValueError, match="steps_per_epoch"): staircase_lr(1.0, 0, 0)


@pytest.fixture(scope="module")
def ds():
    return get_dataset("synthetic", n=24, shape=(1, 8, 8))


@pytest.mark.parametrize("method", METHODS)
def test_each_method_fits_tiny_data(tmp_path, ds, method):
    cfg = Config(method=method, dataset="synthetic", batch_size=8, epochs=1, max_steps=3, out_dir=str(tmp_path), name=method,
                 options=SMALL, amp=False)
    r = fit(cfg, ds, progress=False)
    rows = pd.DataFrame(r["metrics"])
    assert r["steps"] == 3 and len(rows) == 3 and rows.drop(columns=["time"]).map(math.isfinite).all().all()
    assert "ce" in rows and (method == "ib_baseline") == ("mi" not in rows and "kl" not in rows)
    ev = r["method"].evaluate(r["models"], ds, ds, r["cfg"])
    assert 0 <= ev["test_error"] <= 1 and ev["n_test"] == len(ds)


def test_lr_decays_inside_fit(tmp_path, ds):
    "train_size 16 at batch 8 = 2 steps per epoch; halve every epoch: rates 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4."
    cfg = Config(method="ib_vib", dataset="synthetic", batch_size=8, epochs=5, max_steps=5, lr=1e-3, out_dir=str(tmp_path),
                 name="lr", options=SMALL | dict(train_size=16, lr_decay=0.5, decay_epochs=1), amp=False)
    r = fit(cfg, ds, progress=False)
    assert [round(x["lr"], 8) for x in r["metrics"]] == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4]
    assert r["method"].state_dict() == {"step": 5}


def test_beta_scales_the_mi_term(tmp_path, ds):
    "The loss term is beta times KL: beta 0 gives 0, beta 1 gives the KL diagnostic itself."
    m = get_method("ib_vib")
    for beta in (0.0, 1.0):
        cfg = check(Config(method="ib_vib", dataset="synthetic", batch_size=8, options=SMALL | dict(ib_beta=beta)), data=False)
        torch.manual_seed(0)
        models = m.build(cfg, ds.shape); m.optimizers(models, cfg)
        terms, diag = m.loss(models, torch.randn(8, 1, 8, 8), cfg, y=torch.arange(8) % 10)
        assert terms["kl"].item() == pytest.approx(beta * diag["kl"].item())


@pytest.mark.parametrize("options, msg", [(dict(ib_beta=-1.0), "ib_beta=-1.0"), (dict(ib_beta=float("nan")), "ib_beta=nan"),
                                          (dict(samples=1), "samples=1"), (dict(threshold=1.5), "threshold"),
                                          (dict(lr_decay=0.0), "lr_decay"), (dict(colour=1), "unknown key")])
def test_bad_options_fail_before_work(tmp_path, options, msg):
    with pytest.raises(ValueError, match=msg):
        fit(Config(method="ib_mige", dataset="synthetic", options=options, out_dir=str(tmp_path), name="x"))
    assert not (tmp_path / "x").exists()


def test_baseline_refuses_beta_and_loss_needs_labels(ds):
    with pytest.raises(ValueError, match="use ib_vib"): check(Config(method="ib_baseline", dataset="synthetic", options=dict(ib_beta=0.1)))
    cfg = check(Config(method="ib_vib", dataset="synthetic", batch_size=8, options=SMALL), data=False)
    m = get_method("ib_vib"); models = m.build(cfg, ds.shape); m.optimizers(models, cfg)
    with pytest.raises(ValueError, match="y=labels"): m.loss(models, torch.randn(8, 1, 8, 8), cfg)


def test_paper_preset_and_defaults():
    cfg = check(Config(method="ib_mige", dataset="fashion_mnist", preset="paper"), data=False)
    assert (cfg.lr, cfg.batch_size, cfg.epochs) == (2e-4, 100, 200)
    assert cfg.options["threshold"] == 0.94 and cfg.options["ib_beta"] == 1e-3 and cfg.options["z_dim"] == 256
