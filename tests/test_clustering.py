"IIC and the perturbation models: exact MI against hand-computed values, perturbation identities, option errors, training."
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wdim_nb import clustering as CL
from wdim_nb.data import get_dataset, to_float
from wdim_nb.learner import Config, check, fit
from wdim_nb.methods import get_method, method_names

torch.set_num_threads(1)
SHAPE = (1, 16, 16)


@pytest.fixture(scope="module")
def ds():
    return get_dataset("synthetic", n=32, shape=SHAPE)


def cfg(**options):
    return Config(method="iic", dataset="synthetic", batch_size=16, lr=1e-3, max_steps=2,
                  options=dict(heads=2, overcluster=20) | options)


# --- the exact MI
def test_mi_of_a_hand_computed_joint():
    P = torch.tensor([[0.3, 0.1], [0.2, 0.4]], dtype=torch.float64)   # marginals (0.4, 0.6) and (0.5, 0.5)
    want = sum(P[i, j].item() * math.log(P[i, j].item() / (P[i].sum().item() * P[:, j].sum().item()))
               for i in range(2) for j in range(2))
    assert CL.discrete_mi(P).item() == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("C", [2, 3, 10])
def test_perfect_pairing_gives_log_c_and_independence_zero(C):
    z = F.one_hot(torch.arange(10 * C) % C, C).double()
    assert (-CL.iic_loss(z, z)).item() == pytest.approx(math.log(C), abs=1e-9)
    u = torch.full_like(z, 1 / C)
    assert (-CL.iic_loss(u, z)).item() == pytest.approx(0, abs=1e-12)
    # exactly independent one-hot pairs: every (c, c') equally often
    a, b = torch.arange(C).repeat_interleave(C), torch.arange(C).repeat(C)
    assert (-CL.iic_loss(F.one_hot(a, C).double(), F.one_hot(b, C).double())).item() == pytest.approx(0, abs=1e-12)


def test_joint_matrix_is_symmetric_and_normalised():
    z, zp = torch.rand(50, 4).softmax(-1), torch.rand(50, 4).softmax(-1)
    P = CL.joint_matrix(z, zp)
    assert torch.allclose(P, P.T) and P.sum().item() == pytest.approx(1, abs=1e-6) and (P >= 0).all()
    with pytest.raises(ValueError, match="same shape"): CL.joint_matrix(z, zp[:, :3])
    with pytest.raises(ValueError, match=r"\[C, C'\]"): CL.discrete_mi(torch.ones(3))


def test_log_zero_guard_keeps_values_and_gradients_finite():
    logits = torch.tensor([[30.0, -30.0, -30.0]] * 8, requires_grad=True)   # one cluster, zeros elsewhere
    p = logits.softmax(-1)
    loss = CL.iic_loss(p, p)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all() and abs(loss.item()) < 1e-9


def test_gradient_moves_a_degenerate_solution_away():
    torch.manual_seed(0)
    logits = (torch.randn(128, 4) * 0.1 + torch.tensor([4.0, 0, 0, 0])).requires_grad_(True)
    mi0 = -CL.iic_loss(logits.softmax(-1), logits.softmax(-1)).item()
    opt = torch.optim.Adam([logits], lr=0.05)
    for _ in range(200):
        p = logits.softmax(-1); loss = CL.iic_loss(p, p)
        opt.zero_grad(); loss.backward(); opt.step()
    assert -loss.item() > mi0 + 0.5
    assert (logits.argmax(1).bincount(minlength=4) > 0).sum() >= 3


# --- the marginals' weight lambda of IIC's code
@pytest.mark.parametrize("lamb", [1.0, 1.5, 2.0, 4.0])
def test_entropy_weight_adds_the_marginal_entropies(lamb):
    "Random soft assignments: iic_loss(lamb) = -(I + (lamb - 1)(H(z) + H(z'))), all from a joint computed with NumPy."
    g = torch.Generator().manual_seed(2)
    z, zp = torch.randn(40, 6, generator=g).double().softmax(-1), torch.randn(40, 6, generator=g).double().softmax(-1)
    a, b = z.numpy(), zp.numpy()
    P = (a.T @ b + b.T @ a) / 2 / len(a)
    P /= P.sum()
    pc, pcp = P.sum(1), P.sum(0)
    mi = (P * np.log(P / np.outer(pc, pcp))).sum()
    h, hp = -(pc * np.log(pc)).sum(), -(pcp * np.log(pcp)).sum()
    assert CL.iic_loss(z, zp, lamb=lamb).item() == pytest.approx(-(mi + (lamb - 1) * (h + hp)), abs=1e-12)
    if lamb == 1.0: assert CL.iic_loss(z, zp, lamb=lamb).item() == -CL.discrete_mi(CL.joint_matrix(z, zp)).item()


def test_entropy_weight_pushes_a_merged_clustering_apart_harder():
    "Nearly everything in cluster 0: one small gradient step raises the marginal entropy more the larger lambda is."
    torch.manual_seed(0)
    base = torch.randn(256, 5, dtype=torch.float64) * 0.5 + torch.tensor([3.0, 0, 0, 0, 0], dtype=torch.float64)
    entropy = lambda logits: (lambda m: -(m * m.log()).sum().item())(logits.softmax(-1).mean(0))
    gain = {}
    for lamb in (1.0, 1.5, 2.0):
        logits = base.clone().requires_grad_(True)
        p = logits.softmax(-1)
        CL.iic_loss(p, p, lamb=lamb).backward()
        gain[lamb] = entropy(base - 0.1 * logits.grad) - entropy(base)
    assert 0 < gain[1.0] and 10 * gain[1.0] < gain[1.5] < gain[2.0]   # near the merged point the MI alone is almost flat
    assert gain[2.0] == pytest.approx(2 * gain[1.5] - gain[1.0], rel=0.05)   # the extra push grows with lambda - 1


def test_uniform_outputs_are_a_stationary_point_that_lambda_rewards():
    "Every output uniform: I = 0 and H = log C, so the loss is -2 (lamb - 1) log C with a zero gradient."
    logits = (torch.randn(64, 6, dtype=torch.float64) * 1e-9).requires_grad_(True)
    p = logits.softmax(-1)
    loss = CL.iic_loss(p, p.flip(0), lamb=2.0)
    loss.backward()
    assert loss.item() == pytest.approx(-2 * math.log(6), abs=1e-9) and logits.grad.abs().max().item() < 1e-9


def test_one_step_with_entropy_weight_two():
    "The same step (same seed) with lambda = 2 and 1: a lower loss by H(z) + H(z') per head, the same logged MI."
    x = to_float(get_dataset("synthetic", n=16, shape=SHAPE).images)
    res = {}
    for w in (1.0, 2.0):
        c = check(cfg(entropy_weight=w, perturbation="deform"), data=False)
        method = get_method("iic")
        torch.manual_seed(0); models = method.build(c, SHAPE)
        outs = []
        models["encoder"].register_forward_hook(lambda m, args, out: outs.append(out["main"].detach()))
        torch.manual_seed(1); terms, diag = method.loss(models, x, c)
        terms["main"].backward()
        assert all(torch.isfinite(p.grad).all() for p in models.parameters() if p.grad is not None)
        res[w] = terms["main"].item(), diag["mi_main"].item(), outs[0].softmax(-1)
    (l1, mi1, p1), (l2, mi2, p2) = res[1.0], res[2.0]
    assert torch.equal(p1, p2) and mi1 == pytest.approx(mi2, abs=1e-6) and 0 <= mi2 <= math.log(10) + 1e-4
    ents = [(lambda P: (lambda a, b: -(a * a.log()).sum() - (b * b.log()).sum())(P.sum(1), P.sum(0)))(CL.joint_matrix(p1[:16, h], p1[16:, h]))
            for h in range(p1.shape[1])]
    assert l2 == pytest.approx(l1 - torch.stack(ents).mean().item(), abs=1e-5)


# --- evaluation
def test_consensus_head_picks_the_partition_the_other_heads_share():
    "Four heads that split the data one way up to renaming, two that split it their own ways: one of the four wins."
    rng = np.random.default_rng(0)
    shared = rng.integers(0, 10, 2000)
    heads = [rng.permutation(10)[shared] for _ in range(4)] + [rng.integers(0, 10, 2000) for _ in range(2)]
    order = [4, 0, 5, 1, 2, 3]                                   # the odd heads first: the pick is not by position
    assert order[CL.consensus_head(np.stack([heads[i] for i in order], 1))] < 4
    noisy = np.stack([np.where(rng.random(2000) < q, rng.integers(0, 10, 2000), shared) for q in (0.6, 0.1, 0.3)], 1)
    assert CL.consensus_head(noisy) == 1                          # the least corrupted copy agrees most with the rest


def test_head_vote_corrects_independent_errors_and_ignores_naming():
    "Renamed copies of a partition, each with its own 25 % of points moved: the vote recovers the partition."
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 6, 3000)
    heads = [np.where(rng.random(3000) < 0.25, rng.integers(0, 6, 3000), rng.permutation(6)[truth]) for _ in range(7)]
    logits = np.stack([3 * np.eye(6)[h] for h in heads], 1) + rng.normal(0, 0.3, (3000, 7, 6))   # no ties between clusters
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)                                # [N, 7 heads, 6]
    voted = CL.head_vote(probs)
    assert CL.cluster_scores(truth, voted)["accuracy"] > 0.97 > max(CL.cluster_scores(truth, h)["accuracy"] for h in heads)
    renamed = probs[:, :, rng.permutation(6)]                   # the same heads, their clusters renamed: the same partition
    assert CL.cluster_scores(voted, CL.head_vote(renamed))["accuracy"] == 1.0


def test_hungarian_accuracy_of_a_permuted_labelling_is_one():
    y = np.arange(200) % 7
    s = CL.cluster_scores(y, (y * 3 + 2) % 7)
    assert s == pytest.approx(dict(accuracy=1.0, nmi=1.0, ari=1.0), abs=1e-12)
    assert CL.cluster_scores(y, np.zeros_like(y))["accuracy"] == pytest.approx(np.bincount(y).max() / len(y))


# --- perturbation models
def test_zero_deformation_is_the_identity_and_a_unit_field_a_shift():
    x = torch.rand(3, 2, 10, 12) * 2 - 1
    assert torch.allclose(CL.deform(x, torch.zeros(3, 2, 10, 12)), x, atol=1e-5)
    tau = torch.zeros(3, 2, 10, 12); tau[:, 1] = 1.0                           # one pixel down
    assert torch.allclose(CL.deform(x, tau)[..., :-1, :], x[..., 1:, :], atol=1e-5)
    assert torch.allclose(CL.random_deformation(x, amplitude=0.0), x, atol=1e-5)
    with pytest.raises(ValueError, match=r"\[B, 2, H, W\]"): CL.deform(x, torch.zeros(3, 2, 10, 10))


@pytest.mark.parametrize("sigma", [0.0, 2.0])
def test_random_field_has_the_asked_rms(sigma):
    f = CL.random_field(5, 12, 12, amplitude=1.5, sigma=sigma, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(f.pow(2).sum(1).mean((1, 2)).sqrt(), torch.full((5,), 1.5), atol=1e-4)


def test_augment_keeps_shape_and_range():
    x = to_float(get_dataset("synthetic", n=4, shape=SHAPE).images)
    y = CL.augment(x)
    assert y.shape == x.shape and y.min() >= -1 - 1e-5 and y.max() <= 1 + 1e-5


def test_augment_then_deform_is_the_augmentation_when_the_field_is_zero():
    x = to_float(get_dataset("synthetic", n=4, shape=SHAPE).images)
    torch.manual_seed(3); a = CL.perturb(x, "augment", degrees=30.0)
    torch.manual_seed(3); ad = CL.perturb(x, "augment+deform", augment=dict(degrees=30.0), deform=dict(amplitude=0.0))
    assert torch.allclose(ad, a, atol=1e-5)
    torch.manual_seed(3); moved = CL.perturb(x, "augment+deform", augment=dict(degrees=30.0), deform=dict(amplitude=2.0))
    assert (moved - a).abs().amax() > 0.05 and moved.shape == x.shape


def test_jitter_changes_intensity_within_range_and_zero_is_off():
    x = to_float(get_dataset("synthetic", n=8, shape=SHAPE).images)
    assert CL.jitter(x, 0.0) is x
    torch.manual_seed(0)
    y = CL.jitter(x, 0.5)
    assert y.shape == x.shape and y.min() >= -1 - 1e-6 and y.max() <= 1 + 1e-6
    ratio = (y + 1).mean((1, 2, 3)) / (x + 1).mean((1, 2, 3))   # a geometric perturbation keeps this near 1
    assert (ratio - 1).abs().max() > 0.05 and ratio.std() > 0.01   # drawn per image, not one factor for the batch


def test_w2_of_a_shifted_square():
    x = -torch.ones(2, 1, 16, 16)
    x[0, :, 4:8, 4:8] = 1; x[1, :, 4:8, 7:11] = 1                             # the same square, 3 pixels apart
    w = CL.w2_images(x, x[[1, 1]])
    assert w[1].item() == pytest.approx(0, abs=0.05) and w[0].item() == pytest.approx(3, abs=0.15)
    with pytest.raises(ValueError, match="must divide"): CL.w2_images(x, x, pool=3)


def test_wasserstein_perturbation_stays_in_the_ball():
    x = to_float(get_dataset("synthetic", n=6, shape=SHAPE).images)
    clf = CL.random_classifier(SHAPE, 4, seed=0)
    out, info = CL.wasserstein_perturbation(x, clf, radius=0.8, eta=0.2, max_steps=3, log=True,
                                            generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and (CL.w2_images(out, x) <= 0.8 + 1e-3).all()
    assert (info["steps"] <= 3).all() and not any(p.requires_grad for p in clf.parameters())
    with pytest.raises(ValueError, match="augment, deform, wasserstein"): CL.perturb(x, "rotate")


# --- the method
def test_registered_without_labels():
    assert "iic" in method_names()
    m = get_method("iic")
    assert m.uses_labels is False and m.weights == ()
    c = check(Config(method="iic", dataset="synthetic"), data=False)
    assert c.options["n_clusters"] == 10 and c.options["overcluster"] == 50 and c.options["perturbation"] == "augment"


@pytest.mark.parametrize("options,match", [
    (dict(n_clusters=1), "n_clusters=1 must be >= 2"),
    (dict(overcluster=5), "more than n_clusters"),
    (dict(heads=0), "heads=0"),
    (dict(schedule="epochs"), "alternate, sum"),
    (dict(encoder="resnet"), "vgg, dim"),
    (dict(perturbation="blur"), "augment, deform, wasserstein"),
    (dict(radius=0.0), "radius=0.0 must be > 0"),
    (dict(adef_max_steps=0), "adef_max_steps=0 must be >= 1"),
    (dict(flip=2.0), "probability"),
    (dict(jitter=1.0), "jitter=1.0 must be in"),
    (dict(repeats=0), "repeats=0 must be >= 1"),
    (dict(jitter_views="one"), "both, perturbed"),
    (dict(entropy_weight=0.5), "entropy_weight=0.5 must be a finite number >= 1"),
    (dict(entropy_weight=math.inf), "entropy_weight=inf must be"),
    (dict(heads="5"), "expected int"),
    (dict(colour=True), "unknown key"),
])
def test_bad_options_fail_in_check(options, match):
    with pytest.raises(ValueError, match=match): check(Config(method="iic", dataset="synthetic", options=options), data=False)


@pytest.mark.parametrize("options", [dict(perturbation="augment"), dict(perturbation="deform", smooth=0.0),
                                     dict(perturbation="deform"), dict(perturbation="wasserstein", adef_max_steps=2),
                                     dict(perturbation="augment+deform"),
                                     dict(schedule="sum", overcluster=0), dict(encoder="dim", heads=1), dict(jitter=0.0),
                                     dict(repeats=2)])
def test_fit_a_few_steps(tmp_path, options):
    shape = (1, 28, 28) if options.get("encoder") == "dim" else SHAPE   # DIM's encoder has a 28x28 variant
    data = get_dataset("synthetic", n=32, shape=shape)
    r = fit(Config(**{**vars(cfg(**options)), "out_dir": str(tmp_path), "name": "r"}), data, progress=False)
    last = r["metrics"][-1]
    assert r["steps"] == 2 and math.isfinite(last["total"]) and last["grad_encoder"] > 0
    assert 0 <= last["mi_main"] <= math.log(10) + 1e-4
    rep = r["method"].evaluate(r["models"], data, get_dataset("synthetic", "test", n=32, shape=shape), r["cfg"])
    assert set(rep) >= {"accuracy", "nmi", "ari", "best_head", "heads", "confusion", "kmeans_pixels"}
    assert 0 <= rep["best_head"] < r["cfg"].options["heads"] and 0 <= rep["consensus"]["head"] < r["cfg"].options["heads"]
    assert rep["consensus"]["accuracy"] == rep["heads"][rep["consensus"]["head"]]["accuracy"] and 0 <= rep["vote"]["accuracy"] <= 1
    out = r["encoder"](to_float(data.images[:4]))
    assert out["y"].shape == (4, 10) and torch.allclose(out["y"].sum(1), torch.ones(4), atol=1e-4)


@pytest.mark.parametrize("repeats", [1, 3])
def test_repeats_pair_each_image_with_several_perturbations(repeats):
    c = check(cfg(repeats=repeats), data=False)
    method = get_method("iic")
    models = method.build(c, SHAPE)
    seen = []
    models["encoder"].register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
    x = to_float(get_dataset("synthetic", n=4, shape=SHAPE).images)
    terms, _ = method.loss(models, x, c)
    assert seen == [2 * 4 * repeats] and torch.isfinite(terms["main"])   # [x; g(x)] over 4 * repeats pairs


@pytest.mark.parametrize("views", ["both", "perturbed"])
def test_jitter_views_leave_the_clean_view_alone_only_when_asked(views):
    "jitter_views='perturbed' (IIC's pipelines) feeds x itself; 'both' jitters x too. g(x) is jittered either way."
    c = check(cfg(jitter_views=views, perturbation="deform", amplitude=0.0), data=False)   # zero field: g(x) = x before jitter
    method = get_method("iic")
    models = method.build(c, SHAPE)
    seen = []
    models["encoder"].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    x = to_float(get_dataset("synthetic", n=8, shape=SHAPE).images)
    torch.manual_seed(0); method.loss(models, x, c)
    clean, pert = seen[0][:8], seen[0][8:]
    assert torch.equal(clean, x) == (views == "perturbed") and not torch.allclose(pert, x)


def test_method_state_round_trips(tmp_path, ds):
    r = fit(Config(**{**vars(cfg()), "out_dir": str(tmp_path), "name": "s"}), ds, progress=False)
    sd = r["method"].state_dict()
    m = get_method("iic"); m.load_state_dict(sd)
    assert m.step == sd["step"] == 2 and torch.allclose(m.ema, torch.tensor(sd["ema"]))


def test_bad_w2_pool_fails_at_build(tmp_path, ds):
    with pytest.raises(ValueError, match="w2_pool=3 must divide"):
        fit(Config(**{**vars(cfg(perturbation="wasserstein", w2_pool=3)), "out_dir": str(tmp_path), "name": "p"}), ds, progress=False)


def test_every_option_can_be_passed_to_train_notebook():
    "train.ipynb routes `-p name value` to Config first: an option sharing a Config field's name could never be set."
    from dataclasses import fields
    assert not {f.name for f in fields(CL.IICOptions)} & {f.name for f in fields(Config)}
