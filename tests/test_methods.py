"Methods: every registered method trains a few steps; DIM's discriminator really trains; gradients go where they should."
import math

import pytest
import torch
import torch.nn as nn

from wdim_nb.data import get_dataset
from wdim_nb.learner import Config, check, fit, flat_config
from wdim_nb.methods import METHODS, ALIASES, Method, get_method, register, resolve_name, frozen


SHAPE = (1, 12, 12)   # the smallest DIM encoder variant: fast


def cfg(method, **kw):
    base = dict(method=method, dataset="synthetic", batch_size=8, lr=1e-3) | (dict(proj_dim=32) if method == "mige" else {})
    return check(flat_config(**(base | kw)), data=False)


@pytest.fixture(scope="module")
def ds():
    return get_dataset("synthetic", n=16, shape=SHAPE)


PAPER_NAMES = ["dim_g", "dim_l", "dim_lg", "wdim_gc", "wdim_lc", "wdim_gpc", "wdim_lpc", "wdim_lgpc", "mige"]


def test_registry():
    assert set(PAPER_NAMES) <= set(METHODS)
    assert resolve_name("wdim") == "wdim_lgpc" and resolve_name("dim") == "dim_l"
    with pytest.raises(ValueError, match="wdim_lgpc"): get_method("wdim_pl")
    # the papers' defaults
    assert {k: cfg("dim_g").__dict__[k] for k in "alpha beta gamma".split()} == dict(alpha=1.0, beta=0.0, gamma=1.0)
    assert {k: cfg("dim_l").__dict__[k] for k in "alpha beta gamma".split()} == dict(alpha=0.0, beta=1.0, gamma=0.1)
    c = cfg("wdim", preset="paper")
    assert (c.alpha, c.beta, c.gamma, c.mi_bound, c.options["prior"], c.lr, c.epochs) == (0.5, 1.0, 0.1, "jsd", "uniform", 1e-3, 420)
    assert cfg("wdim").gamma == 1.0 and cfg("wdim_lc").gamma == 0.0     # the quick preset's WDIM prior weight


@pytest.mark.parametrize("name,critic", [(n, "paper") for n in PAPER_NAMES] + [("wdim_lgpc", "direct")])
def test_every_method_trains(tmp_path, ds, name, critic):
    wdim = dict(prior_critic=critic) if name.startswith("wdim") else {}
    r = fit(cfg(name, max_steps=2, out_dir=str(tmp_path), name="r", **wdim), ds, progress=False)
    last = r["metrics"][-1]
    assert r["steps"] == 2 and all(math.isfinite(v) for v in last.values() if isinstance(v, float))
    assert "encoder" in r["models"] and last["grad_encoder"] > 0
    if name.startswith("wdim") and name.endswith("pc"):
        assert ("prior_disc" in r["models"]) == (critic == "paper")      # the direct distance needs no D


def test_adversarial_prior_gradients(ds):
    "prior_disc trains D only; prior_enc trains the encoder only (non-saturating), D never sees it."
    c = cfg("dim_g"); m = get_method("dim_g"); models = m.build(c, SHAPE)
    terms, _ = m.loss(models, ds.images[:8].float() / 127.5 - 1, c)
    enc, D = models["encoder"], models["prior_disc"]
    g = lambda t, net: torch.autograd.grad(t, list(net.parameters()), retain_graph=True, allow_unused=True)
    assert all(x is None or x.abs().sum() == 0 for x in g(terms["prior_enc"], D))
    assert all(x is None for x in g(terms["prior_disc"], enc))
    assert any(x is not None and x.abs().sum() > 0 for x in g(terms["prior_enc"], enc))
    assert any(x is not None and x.abs().sum() > 0 for x in g(terms["prior_disc"], D))


def test_discriminator_really_trains(ds):
    "With the encoder held fixed, D's own optimiser drives its classification loss far below log 4."
    torch.manual_seed(0)
    c = cfg("dim_g", lr=1e-3); m = get_method("dim_g"); models = m.build(c, SHAPE); opt = m.optimizers(models, c)["prior"]
    with torch.no_grad(): y = torch.sigmoid(models["encoder"](ds.images[:8].float() / 127.5 - 1)["y"])
    for _ in range(25):
        terms, diag = {}, {}
        m._adversarial(models, y, c, terms, diag)
        opt.zero_grad(); terms["prior_disc"].backward(); opt.step()
    assert terms["prior_disc"].item() / c.gamma < 0.5 * math.log(4) and diag["prior_d_acc"] > 0.9


def test_global_negatives(ds, monkeypatch):
    "K global negatives per positive: the bound gets (pos [B], neg [B, K]); a batch with at most K other codes uses them all."
    import wdim_nb.methods as WM
    seen, bound = [], WM.mi_bound_pairs
    monkeypatch.setattr(WM, "mi_bound_pairs", lambda pos, neg, *a, **k: seen.append((pos.shape, neg.shape)) or bound(pos, neg, *a, **k))
    c = cfg("wdim", global_negatives=3); m = get_method("wdim"); models = m.build(c, SHAPE)
    terms, _ = m.loss(models, ds.images[:8].float() / 127.5 - 1, c)
    assert torch.isfinite(terms["global"]) and (torch.Size([8]), torch.Size([8, 3])) in seen
    seen.clear(); m.loss(models, ds.images[:4].float() / 127.5 - 1, c)   # a batch of 4: at most its 3 other codes
    assert (torch.Size([4]), torch.Size([4, 3])) not in seen and len(seen) == 1   # the global term took the (B, B) matrix
    with pytest.raises(ValueError, match="global_negatives=0 must be >= 1"): cfg("wdim", global_negatives=0)


def test_wdim_paper_preset_scores_one_global_negative():
    "DeepInfomaxPytorch, which WDIM ran, pairs y_i with image i + 1's map only, for both critics; `make run`'s WDIM uses 15."
    opt = lambda preset, **kw: check(flat_config(method="wdim", preset=preset, dataset="synthetic", **kw), data=False).options
    assert (opt("paper")["global_negatives"], opt("paper")["local_critic"], opt("quick")["global_negatives"]) == (1, "concat", 15)
    assert opt("paper", global_negatives=5)["global_negatives"] == 5   # the user's choice wins
    assert check(flat_config(method="dim_lg", preset="paper", dataset="synthetic"), data=False).options["global_negatives"] is None


def test_wdim_paper_prior_trains_d_and_encoder(ds):
    "WDIM Eq. 9: one loss minimised over both the encoder and D."
    c = cfg("wdim_gpc", prior_critic="paper"); m = get_method("wdim_gpc"); models = m.build(c, SHAPE)
    terms, diag = m.loss(models, ds.images[:8].float() / 127.5 - 1, c)
    gD = torch.autograd.grad(terms["prior"], list(models["prior_disc"].parameters()), retain_graph=True)
    gE = torch.autograd.grad(terms["prior"], list(models["encoder"].head.parameters()))
    assert sum(x.abs().sum() for x in gD) > 0 and sum(x.abs().sum() for x in gE) > 0
    assert "prior_d_std" in diag


def test_mige_projects_large_inputs():
    c = cfg("mige", proj_dim=32); models = get_method("mige").build(c, SHAPE)
    assert models["projection"].R.shape == (32, 144)
    assert "projection" not in get_method("mige").build(cfg("mige", proj_dim=512), SHAPE)


def test_new_method_is_one_registered_class(tmp_path, ds):
    "What a later issue does (IB, IIC, ...): subclass Method, register, train with the same loop."
    class Recon(Method):
        name, weights, defaults = "test_recon", ("alpha",), dict(alpha=1.0, mi_bound="jsd")
        def build(self, cfg, shape):
            from wdim_nb.models import encoder
            e = encoder(cfg.arch, tuple(shape), y_dim=cfg.y_dim)
            return nn.ModuleDict(dict(encoder=e, decoder=nn.Linear(cfg.y_dim, math.prod(shape))))
        def loss(self, models, x, cfg):
            err = (models["decoder"](models["encoder"](x)["y"]) - x.flatten(1)).pow(2).mean()
            return {"recon": cfg.alpha * err}, {"mse": err.detach()}
    register(Recon)
    r = fit(Config(method="test_recon", dataset="synthetic", batch_size=8, epochs=2, max_steps=3, out_dir=str(tmp_path)), ds,
            progress=False)
    assert [row["step"] for row in r["metrics"]] == [1, 2, 3] and "grad_decoder" in r["metrics"][0]


def test_paper_weights_and_projection():
    "dim_lg uses DIM Table 3's alpha = 0.5, beta = 0.1; MIGE projects x only on STL-10 (Table 2), unless asked."
    assert {k: cfg("dim_lg").__dict__[k] for k in ("alpha", "beta")} == dict(alpha=0.5, beta=0.1)
    plain = lambda **kw: check(flat_config(**(dict(method="mige", dataset="synthetic", batch_size=8) | kw)), data=False)
    assert "projection" not in get_method("mige").build(plain(), (3, 32, 32))
    assert "projection" in get_method("mige").build(plain(dataset="stl10"), (3, 64, 64))
    assert get_method("mige").build(plain(proj_dim=16), (3, 32, 32))["projection"].R.shape == (16, 3 * 32 * 32)


def test_occlusion_and_coordinates(ds):
    "DIM Table 4 options: occlusion changes only the code's input; coordinate prediction adds its own trained term."
    x = ds.images[:8].float() / 127.5 - 1
    m = get_method("dim_l")
    torch.manual_seed(0); c0 = cfg("dim_l"); models = m.build(c0, SHAPE)
    torch.manual_seed(1); y_plain = m._occluded_code(models["encoder"], x)
    assert not torch.allclose(y_plain, models["encoder"](x)["y"])           # the code saw another image
    c = cfg("dim_l", occlude=True, coord_weight=1.0)
    models = m.build(c, SHAPE)
    assert {"coord_abs", "coord_rel"} <= set(models)
    terms, _ = m.loss(models, x, c)
    assert "coord" in terms and terms["coord"] > 0 and torch.isfinite(terms["local"])
    grads = torch.autograd.grad(terms["coord"], list(models["coord_abs"].parameters()))
    assert any(g.abs().sum() > 0 for g in grads)
    assert "coord_abs" not in m.build(cfg("dim_l"), SHAPE)                  # off by default


def test_cross_view(ds):
    "cross_view: the code y is the encoder's output on another draw of the augmentation; the maps stay on the batch."
    from wdim_nb.methods import second_view
    pad = second_view(torch.full((4, 1, 12, 12), -1.0), "crop_flip")
    assert pad.shape == (4, 1, 12, 12) and (pad == -1).all()                # padding is the background, pixel 0
    with pytest.raises(ValueError, match="augment"): cfg("dim_l", cross_view=True, augment="none")
    c, m = cfg("dim_lg", cross_view=True, augment="flip"), get_method("dim_lg")
    models = m.build(c, SHAPE)
    seen = []
    models["encoder"].register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    heads = []; models["encoder"].head.register_forward_hook(lambda *a: heads.append(1))
    x = ds.images[:8].float() / 127.5 - 1
    torch.manual_seed(0); terms, _ = m.loss(models, x, c)
    assert len(heads) == 1                                                  # the batch's own code is never read: not computed
    same = lambda a, b: torch.allclose(a, b, atol=1e-6)                    # x + 1 - 1 rounds
    assert len(seen) == 2 and torch.equal(seen[0], x) and any(not same(b, a) for a, b in zip(x, seen[1]))
    assert all(same(b, a) or same(b, a.flip(-1)) for a, b in zip(x, seen[1]))   # one flip draw per image
    assert all(torch.isfinite(t) for t in terms.values())
    seen.clear(); m.loss(models, x, cfg("dim_lg", augment="flip")); assert len(seen) == 1   # off by default
    # a preset may choose it (the quick wdim does); a run's own setting wins; the paper preset and the others keep one view
    assert cfg("wdim").options["cross_view"] is True and cfg("wdim", cross_view=False).options["cross_view"] is False
    assert cfg("wdim", preset="paper").options["cross_view"] is False and cfg("dim_l").options["cross_view"] is False
    assert cfg("wdim").options["symmetric"] is False                        # one direction: train.ipynb measured both
    assert cfg("wdim").augment == "resized_crop_flip" and cfg("dim_l").augment == "crop_flip"   # make run's views (train.ipynb)
    assert cfg("wdim", preset="paper").augment is None                     # WDIM trains without augmentation


def test_symmetric_cross_view(ds):
    "symmetric: each bound is the mean of the two directions, y(x') against the maps of x and y(x) against those of x'."
    from wdim_nb.methods import _mi_terms, second_view
    with pytest.raises(ValueError, match="cross_view=True as well"): cfg("dim_lg", symmetric=True, augment="flip")
    with pytest.raises(ValueError, match="occlude"): cfg("dim_lg", symmetric=True, cross_view=True, occlude=True, augment="flip")
    c, m = cfg("dim_lg", cross_view=True, symmetric=True, augment="crop_flip"), get_method("dim_lg")
    torch.manual_seed(0); models = m.build(c, SHAPE)
    x = ds.images[:8].float() / 127.5 - 1
    torch.manual_seed(1); terms, diag = m.loss(models, x, c)
    torch.manual_seed(1); x2 = second_view(x, "crop_flip")          # the same draw as inside the loss
    enc = models["encoder"]; o1, o2 = enc(x), enc(x2)                 # train-mode batch norm: the same outputs again
    for k, w in (("global", c.alpha), ("local", c.beta)):
        crit = models[f"{k}_critic"]
        one = lambda out, y: _mi_terms(k, crit(out[crit.tap], y), c)[0]
        forward, backward = one(o1, o2["y"]), one(o2, o1["y"])
        assert not torch.allclose(forward, backward)                    # the two directions differ: the mean is a real test
        assert torch.allclose(terms[k], -w * (forward + backward) / 2, rtol=1e-5, atol=1e-6), k
        assert torch.allclose(diag[f"{k}_mi"], (forward + backward) / 2, rtol=1e-5, atol=1e-6)
    torch.manual_seed(1); one_way, _ = m.loss(models, x, cfg("dim_lg", cross_view=True, augment="crop_flip"))
    assert torch.allclose(one_way["local"], -c.beta * _mi_terms("local", models["local_critic"](o1["local"], o2["y"]), c)[0], rtol=1e-5, atol=1e-6)


def test_effective_rank_against_known_spectra():
    from wdim_nb.methods import effective_rank
    g = torch.Generator().manual_seed(1)
    z = torch.randn(50000, 6, generator=g) * torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    assert abs(effective_rank(z).item() - 3.0) < 0.05                     # three equal directions
    w = torch.randn(50000, 2, generator=g) * torch.tensor([1.0, 2.0 ** 0.5])   # eigenvalues 1 and 2: p = (1/3, 2/3)
    h = -(1 / 3) * math.log(1 / 3) - (2 / 3) * math.log(2 / 3)
    assert abs(effective_rank(w).item() - math.exp(h)) < 0.02
