"Tests of wdim_nb.evaluate against known answers: probes, Hungarian clustering accuracy, NDM, MINE, evaluate()."
import json, math

import numpy as np
import pytest
import torch
import torch.nn as nn

from wdim_nb.bounds import correlated_gaussians, gaussian_mi
from wdim_nb.data import get_dataset
from wdim_nb.evaluate import (cluster_accuracy, cpu_threads, evaluate, extract_features, kmeans_accuracy, linear_probe,
                              mine_estimate, mlp_probe, ms_ssim, msssim_decoder, ndm, shuffle_dims, standardize, svm_probe)


class Tiny(nn.Module):
    def __init__(self, y_dim=6):
        super().__init__()
        self.c = nn.Conv2d(1, 3, 3, stride=2, padding=1); self.f = nn.Linear(3 * 5 * 5, 12); self.y = nn.Linear(12, y_dim)
    def forward(self, x):
        conv = torch.relu(self.c(x)); fc = torch.relu(self.f(conv.flatten(1)))
        return {"conv": conv, "fc": fc, "y": self.y(fc)}


def _separable(n=500, k=4, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    return torch.randn(n, d, generator=g) * 0.3 + nn.functional.one_hot(y, d).float() * 3, y


def test_cluster_accuracy_permutations_and_partial():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 200)
    perm = rng.permutation(5)
    assert cluster_accuracy(labels, perm[labels]) == 1.0
    assert cluster_accuracy(labels, perm[labels] + 100) == 1.0  # arbitrary cluster ids
    # brute force over all maps on a small case
    import itertools
    lab, asg = np.array([0, 0, 1, 1, 1, 2, 2, 0]), np.array([1, 1, 1, 0, 0, 2, 0, 2])
    best = max(sum(p[a] == l for a, l in zip(asg, lab)) for p in itertools.permutations(range(3))) / len(lab)
    assert cluster_accuracy(lab, asg) == pytest.approx(best)
    # more clusters than classes: one-to-one leaves clusters unmatched, many-to-one does not
    assert cluster_accuracy(lab, np.arange(8)) == pytest.approx(3 / 8)
    assert cluster_accuracy(lab, np.arange(8), many_to_one=True) == 1.0
    with pytest.raises(ValueError): cluster_accuracy(lab, asg[:3])


def test_probes_separable_and_noise():
    x, y = _separable()
    assert mlp_probe(x[:350], y[:350], x[350:], y[350:], epochs=20) > 0.97
    assert linear_probe(x[:350], y[:350], x[350:], y[350:]) > 0.97
    assert linear_probe(x[:350], y[:350], x[350:], y[350:], model="svm") > 0.97
    noise = torch.randn_like(x)
    assert abs(mlp_probe(noise[:350], y[:350], noise[350:], y[350:], epochs=5) - 0.25) < 0.12
    assert abs(linear_probe(noise[:350], y[:350], noise[350:], y[350:]) - 0.25) < 0.12
    with pytest.raises(ValueError, match="logistic"): linear_probe(x, y, x, y, model="tree")


def test_mlp_probe_deterministic_and_leaves_global_rng():
    x, y = _separable(200)
    torch.manual_seed(123); before = torch.rand(1)
    torch.manual_seed(123)
    a = mlp_probe(x[:150], y[:150], x[150:], y[150:], epochs=2, log=True)
    after = torch.rand(1)
    assert torch.equal(before, after)  # global RNG untouched
    b = mlp_probe(x[:150], y[:150], x[150:], y[150:], epochs=2, log=True)
    assert a == b and len(a[1]["test_acc_per_epoch"]) == 2


def test_kmeans_accuracy():
    x, y = _separable()
    assert kmeans_accuracy(x, y) > 0.95
    assert kmeans_accuracy(torch.randn(400, 5), torch.randint(0, 4, (400,))) < 0.4


def test_standardize_and_shuffle_dims():
    a = torch.randn(100, 3) * 5 + 2
    s, t = standardize(a, a.clone())
    assert torch.allclose(s.mean(0), torch.zeros(3), atol=1e-5) and torch.allclose(s, t)
    assert torch.isfinite(standardize(torch.ones(10, 2))).all()  # constant columns do not divide by 0
    z = torch.arange(20.).reshape(10, 2)
    sh = shuffle_dims(z, torch.Generator().manual_seed(0))
    for j in range(2): assert torch.equal(sh[:, j].sort().values, z[:, j])  # same marginals
    assert not torch.equal(sh, z)


def test_ndm_independent_vs_correlated():
    g = torch.Generator().manual_seed(0)
    indep = torch.cat(correlated_gaussians(1000, 0.0, 2, generator=g), 1)
    corr = torch.cat(correlated_gaussians(1000, 0.9, 2, generator=g), 1)
    v0, info0 = ndm(indep, steps=100, hidden=(64, 64), log=True)
    v1, info1 = ndm(corr, steps=100, hidden=(64, 64), log=True)
    truth = gaussian_mi(0.9, 2)  # total correlation of [x, y] = I(x; y) = 1.66 nats
    # held-out accuracy of 250 + 250 codes: sampling sd ~0.022; 0.08 = 3.6 sd (seeds 0-3 gave at most 0.042)
    assert abs(v0) < 0.1 and abs(info0["accuracy"] - 0.5) < 0.08
    assert 0.6 < v1 < truth + 0.3 and info1["accuracy"] > 0.7 and v1 > v0 + 0.5
    # NDM ignores per-dimension monotone maps (KL invariance): a sigmoid changes little
    assert abs(ndm(corr, steps=100, hidden=(64, 64), sigmoid=True) - v1) < 0.4


@pytest.mark.parametrize("seed", [1, 2])
def test_ndm_at_16_dims_against_the_closed_form_and_unscaled_sigmoid_inputs(seed):
    "Equicorrelated Gaussian (d = 16, rho = 0.5): TC = 4.13 nats. NDM sees most of it; feeding sigmoid outputs unscaled hides it."
    d, rho = 16, 0.5
    tc = -0.5 * ((d - 1) * math.log(1 - rho) + math.log(1 + (d - 1) * rho))
    g = torch.Generator().manual_seed(seed)
    z = math.sqrt(rho) * torch.randn(3000, 1, generator=g) + math.sqrt(1 - rho) * torch.randn(3000, d, generator=g)
    plain, squashed, raw = (ndm(z, steps=150, hidden=(64, 64), seed=seed, **kw)
                            for kw in ({}, dict(sigmoid=True), dict(sigmoid=True, rescale=False)))
    assert 0.4 * tc < plain < tc + 0.2 and abs(squashed - plain) < 0.15 * plain and raw < 0.6 * plain


def test_mine_gaussian_ground_truth():
    g = torch.Generator().manual_seed(3)
    x, y = correlated_gaussians(1000, 0.8, 2, generator=g)
    est, info = mine_estimate(x, y, steps=150, hidden=64, log=True)
    # a 150-step critic with a decaying learning rate: seeds 0-3 gave 0.60-0.87 (truth 1.02); the bar is far from 0
    assert 0.35 < est < gaussian_mi(0.8, 2) + 0.25 and len(info["train_bound"]) == 150
    assert abs(mine_estimate(x, torch.randn(1000, 2, generator=g), steps=100, hidden=64)) < 0.15
    with pytest.raises(ValueError, match="rows"): mine_estimate(x, y[:10])


def test_extract_features_contract():
    enc = Tiny()
    ds = get_dataset("synthetic", n=40, shape=(1, 10, 10), n_classes=3)
    f = extract_features(enc, ds, batch_size=16)
    assert {k: tuple(v.shape) for k, v in f.items()} == {"conv": (40, 75), "fc": (40, 12), "y": (40, 6)}
    enc.train(); extract_features(enc, ds, taps=("y",)); assert enc.training
    with pytest.raises(ValueError, match="subset"): extract_features(enc, ds, taps=("z",))
    with pytest.raises(TypeError, match="dict"): extract_features(nn.Flatten(), ds, taps=("y",), device="cpu")


def test_linear_probe_on_chosen_taps_only():
    "linear_taps limits the linear probe to some taps; the raw-pixel baseline keeps its own; an unknown tap fails first."
    tr = get_dataset("synthetic", n=120, shape=(1, 10, 10), n_classes=3)
    te = get_dataset("synthetic", "test", n=60, shape=(1, 10, 10), n_classes=3)
    kw = dict(mlp_epochs=1, ndm_steps=0, mine_steps=0, progress=False)
    res = evaluate(Tiny(), tr, te, random_encoder=Tiny(), linear_taps=["y"], **kw)
    assert {t: set(p) for t, p in res["probe"].items()} == {"conv": {"mlp"}, "fc": {"mlp"}, "y": {"mlp", "linear"}}
    assert set(res["baselines"]["random_encoder"]["probe"]["conv"]) == {"mlp"} and "linear" in res["baselines"]["raw"]
    with pytest.raises(ValueError, match="linear_taps"): evaluate(Tiny(), tr, te, linear_taps=["pixels"], **kw)


def test_evaluate_structure_and_baselines():
    torch.manual_seed(0)
    tr = get_dataset("synthetic", n=240, shape=(1, 10, 10), n_classes=3)
    te = get_dataset("synthetic", "test", n=120, shape=(1, 10, 10), n_classes=3)
    res = evaluate(Tiny(), tr, te, random_encoder=Tiny(), n_train=200, n_test=100, mlp_epochs=2,
                   ndm_steps=10, mine_steps=10, progress=False)
    assert set(res) == {"probe", "ndm", "ndm_sigmoid", "mine", "kmeans_acc", "msssim", "baselines", "config"}
    assert res["msssim"] is None                                  # DIM Table 3's decoder only when asked for
    assert set(res["probe"]) == {"conv", "fc", "y"}
    for t in ("conv", "fc", "y"):
        assert set(res["probe"][t]) == {"mlp", "linear"} and all(0 <= v <= 1 for v in res["probe"][t].values())
    assert all(isinstance(res[k], float) for k in ("ndm", "ndm_sigmoid", "mine")) and 0 <= res["kmeans_acc"] <= 1
    assert set(res["baselines"]["raw"]) == {"mlp", "linear", "kmeans_acc"}
    assert res["baselines"]["raw"]["linear"] > 0.9  # synthetic classes are linearly separable in pixels
    assert set(res["baselines"]["random_encoder"]) == {"probe", "ndm", "ndm_sigmoid", "mine", "kmeans_acc"}
    assert res["config"]["mine_lr_decay"] == 0.1 and res["config"]["svm_runs"] == 5
    assert res["config"]["n_train"] == 200 and res["config"]["n_test"] == 100
    json.dumps(res)
    # options: one tap, no random encoder, no raw, skip NDM/MINE
    r2 = evaluate(Tiny(), tr, te, taps=("y",), raw=False, probes=("linear",), ndm_steps=0, mine_steps=0, progress=False)
    assert set(r2["probe"]) == {"y"} and set(r2["probe"]["y"]) == {"linear"}
    assert r2["ndm"] is None and r2["ndm_sigmoid"] is None and r2["mine"] is None and r2["baselines"] == {"raw": None, "random_encoder": None}
    with pytest.raises(ValueError, match="svm"): evaluate(Tiny(), tr, te, probes=("knn",))
    # DIM Table 3's SVM: mean and spread under clear keys, for every tap and the raw baseline
    r3 = evaluate(Tiny(), tr, te, taps=("y",), probes=("svm",), svm_runs=3, ndm_steps=0, mine_steps=0, progress=False)
    assert set(r3["probe"]["y"]) == {"svm", "svm_std"} and set(r3["baselines"]["raw"]) == {"svm", "svm_std", "kmeans_acc"}
    assert 0 <= r3["probe"]["y"]["svm"] <= 1 and r3["probe"]["y"]["svm_std"] >= 0
    r4 = evaluate(Tiny(), tr, te, taps=("y",), probes=("linear",), ndm_steps=0, mine_steps=0, raw=False, decoder_steps=20, progress=False)
    assert 0 < r4["msssim"] < 1 and r4["config"]["decoder_steps"] == 20


def test_evaluate_skips_unlabeled_images():
    tr = get_dataset("synthetic", n=60, shape=(1, 10, 10), n_classes=3)
    tr.labels[:30] = -1
    te = get_dataset("synthetic", "test", n=30, shape=(1, 10, 10), n_classes=3)
    r = evaluate(Tiny(), tr, te, taps=("y",), raw=False, probes=("linear",), ndm_steps=0, mine_steps=0,
                 n_train=None, progress=False)
    assert r["config"]["n_train"] == 30


def test_cpu_threads_sets_and_restores():
    torch.set_num_threads(2)
    try:
        with cpu_threads(1): assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with cpu_threads(None): assert torch.get_num_threads() == 2
    finally: torch.set_num_threads(1)


def test_svm_probe_uses_hinge_loss_and_five_runs(monkeypatch):
    "DIM Table 3: five linear SVMs with 'a simple hinge loss' (the SVM objective with C = 1: alpha = 1 / n), seeds in turn."
    import sklearn.linear_model
    made = []
    class Recording(sklearn.linear_model.SGDClassifier):
        def fit(self, *a, **k):
            made.append(self.get_params()); return super().fit(*a, **k)
    monkeypatch.setattr(sklearn.linear_model, "SGDClassifier", Recording)
    x, y = _separable()
    s = svm_probe(x[:350], y[:350], x[350:], y[350:], seed=7)
    assert [m["loss"] for m in made] == ["hinge"] * 5 and [m["random_state"] for m in made] == [7, 8, 9, 10, 11]
    assert all(m["alpha"] == pytest.approx(1 / 350) and m["penalty"] == "l2" for m in made)
    assert len(s["runs"]) == 5 and s["mean"] == pytest.approx(np.mean(s["runs"])) and s["std"] == pytest.approx(np.std(s["runs"]))
    assert s["mean"] > 0.97
    with pytest.raises(ValueError, match="runs"): svm_probe(x, y, x, y, runs=0)


def test_svm_by_sgd_reaches_the_exact_hinge_optimum(monkeypatch):
    "Ground truth: the SVM objective (1/2 |w|^2 + C sum hinge, per class) at LinearSVC's converged dual solution."
    import sklearn.linear_model
    from sklearn.svm import LinearSVC
    fitted = []
    class Keep(sklearn.linear_model.SGDClassifier):
        def fit(self, *a, **k):
            fitted.append(self); return super().fit(*a, **k)
    monkeypatch.setattr(sklearn.linear_model, "SGDClassifier", Keep)
    def objective(W, b, X, y):
        t = np.where(y[:, None] == np.arange(W.shape[0]), 1.0, -1.0)
        return 0.5 * (W ** 2).sum() + np.maximum(0, 1 - t * (X @ W.T + b)).sum()
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        y = torch.randint(0, 3, (600,), generator=g)
        x = torch.randn(600, 10, generator=g) + nn.functional.one_hot(y, 10).float() * 1.2    # overlapping classes
        X, Y = standardize(x[:400], x[400:])[0].numpy(), y[:400].numpy()
        exact = LinearSVC(C=1.0, loss="hinge", max_iter=200_000, tol=1e-8).fit(X, Y)
        svm_probe(x[:400], y[:400], x[400:], y[400:], runs=1, max_iter=1000)
        ratio = objective(fitted[-1].coef_, fitted[-1].intercept_, X, Y) / objective(exact.coef_, exact.intercept_, X, Y)
        assert 0.9 < ratio < 1.25, ratio      # measured 1.03-1.07; the squared hinge or another C is off by 2x or more


def test_mine_learning_rate_decays_geometrically():
    g = torch.Generator().manual_seed(0)
    x, y = correlated_gaussians(200, 0.5, 2, generator=g)
    _, info = mine_estimate(x, y, steps=20, hidden=8, lr=2e-3, lr_decay=0.05, log=True)
    assert np.allclose(info["lr"], 2e-3 * 0.05 ** (np.arange(20) / 20), rtol=1e-12, atol=0)
    assert mine_estimate(x, y, steps=4, hidden=8, lr_decay=1.0, log=True)[1]["lr"] == [1e-3] * 4
    with pytest.raises(ValueError, match="lr_decay"): mine_estimate(x, y, lr_decay=1.5)


def test_baseline_cache_reuses_only_identical_inputs(tmp_path, monkeypatch):
    import wdim_nb.evaluate as E
    tr = get_dataset("synthetic", n=120, shape=(1, 10, 10), n_classes=3)
    te = get_dataset("synthetic", "test", n=60, shape=(1, 10, 10), n_classes=3)
    kw = dict(n_train=None, n_test=None, mlp_epochs=1, ndm_steps=5, mine_steps=5, progress=False, baseline_cache=tmp_path)
    torch.manual_seed(0); enc, rnd = Tiny(), Tiny()
    first = evaluate(enc, tr, te, random_encoder=rnd, **kw)
    calls = []
    real = E._measure
    monkeypatch.setattr(E, "_measure", lambda *a, **k: calls.append(a[5]["taps"]) or real(*a, **k))
    again = evaluate(Tiny(), tr, te, random_encoder=rnd, **kw)        # another trained encoder, the same random one
    assert again["config"]["baselines_reused"] and again["baselines"] == first["baselines"]
    assert calls == [["conv", "fc", "y"]]                             # only the trained encoder was measured
    calls.clear()
    with torch.no_grad(): rnd.y.weight.add_(1e-3)                     # one weight differs: measured afresh
    other = evaluate(enc, tr, te, random_encoder=rnd, **kw)
    assert not other["config"]["baselines_reused"] and len(calls) == 3   # trained, pixels, random
    assert other["config"]["baselines_key"] != first["config"]["baselines_key"]
    te2 = get_dataset("synthetic", "test", n=60, shape=(1, 10, 10), n_classes=3, seed=5)
    assert not evaluate(enc, tr, te2, random_encoder=rnd, **kw)["config"]["baselines_reused"]   # other test images
    assert not evaluate(enc, tr, te, random_encoder=rnd, **dict(kw, mlp_epochs=2))["config"]["baselines_reused"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []   # no temporary file left
    assert "baselines_key" in evaluate(enc, tr, te, random_encoder=rnd, **dict(kw, baseline_cache=None))["config"]


def test_ms_ssim_known_values_and_scales(monkeypatch):
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert abs(ms_ssim(x, x).item() - 1) < 1e-5
    assert ms_ssim(x, 1 - x).item() < 0.1                               # a negative image shares no structure
    import torchmetrics.functional.image as F
    seen = []
    real = F.multiscale_structural_similarity_index_measure
    monkeypatch.setattr(F, "multiscale_structural_similarity_index_measure", lambda *a, **k: seen.append(k["betas"]) or real(*a, **k))
    ms_ssim(x, x); ms_ssim(torch.rand(2, 3, 96, 96), torch.rand(2, 3, 96, 96))
    assert [len(b) for b in seen] == [3, 4] and all(abs(sum(b) - 1) < 1e-9 for b in seen)   # 28 px: 3 scales; 96 px: 4
    with pytest.raises(ValueError, match="too small"): ms_ssim(x[..., :6, :6], x[..., :6, :6])


def test_msssim_decoder_pixels_beat_an_independent_code():
    g = torch.Generator().manual_seed(0)
    x = get_dataset("synthetic", n=400, shape=(1, 16, 16), n_classes=4).images.float() / 255
    pix = msssim_decoder(x[:300].flatten(1), x[:300], x[300:].flatten(1), x[300:], steps=150, hidden=128)
    noise = torch.randn(400, 8, generator=g)
    ind, info = msssim_decoder(noise[:300], x[:300], noise[300:], x[300:], steps=150, hidden=128, log=True)
    assert pix > ind + 0.1 and len(info["train_mse"]) == 150
    assert msssim_decoder(x[:300].flatten(1), x[:300], x[300:].flatten(1), x[300:], steps=150, hidden=128) == pix   # seeded
