"ReMINE benchmarks: the loss table, score orientation, same-class partners, a separable toy with MI log 10, Table 2 marks."
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from wdim_nb.bounds import mi_bound
from wdim_nb.benchmarks import (LAMBDAS, LOSSES, clb_scores, contrastive_benchmark, loss_options, mean_ci,
                                same_class_partner, slb_scores, supervised_benchmark, table2)
from wdim_nb.data import ImageDataset

torch.set_num_threads(1)


@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("lam", [0.0, *LAMBDAS])
def test_every_loss_is_a_valid_bound_request(loss, lam):
    kind, opts = loss_options(loss, lam)
    s = torch.randn(6, 6, requires_grad=True)
    v = mi_bound(s, kind, **opts)
    v.backward()
    assert math.isfinite(v.item()) and torch.isfinite(s.grad).all()
    assert ("remine_lambda" in opts) == (lam > 0)


def test_table1_settings():
    assert loss_options("MINE") == ("dv", {})                         # no moving average
    assert loss_options("SMILE")[1]["tau"] == 10.0
    assert loss_options("TUBA", 0.1)[1]["remine_distance"] == "log_euclidean" and loss_options("TUBA", 0.1)[1]["clip_tau"] == 10.0
    assert loss_options("JS", 0.1)[1]["remine_distance"] == "euclidean"
    with pytest.raises(ValueError, match="InfoNCE"): loss_options("CPC")
    with pytest.raises(ValueError, match="remine_lambda"): loss_options("MINE", -0.1)


def test_slb_infonce_is_the_classification_cross_entropy():
    "With each of C classes once in the batch, InfoNCE on slb_scores = log C - softmax cross-entropy (ReMINE Sec. 5.1)."
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(10, 10, generator=g, dtype=torch.float64), torch.randperm(10, generator=g)
    v = mi_bound(slb_scores(logits, labels), "infonce", exclude_positives=True)
    assert v.item() == pytest.approx(math.log(10) - F.cross_entropy(logits, labels).item(), abs=1e-9)


def test_score_shapes_and_errors():
    assert torch.equal(clb_scores(torch.eye(3), 2 * torch.eye(3)), 2 * torch.eye(3))
    with pytest.raises(ValueError, match="labels"): slb_scores(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="one shape"): clb_scores(torch.zeros(3, 4), torch.zeros(3, 5))


def test_same_class_partner():
    labels = torch.randint(0, 5, (200,), generator=torch.Generator().manual_seed(1))
    p = same_class_partner(labels, generator=torch.Generator().manual_seed(2))
    assert torch.equal(labels[p], labels) and (p != torch.arange(200)).all()
    assert same_class_partner(torch.tensor([3]), generator=torch.Generator()).tolist() == [0]


def toy(n, seed, noise=0.05):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = F.one_hot(y, 10).float() + noise * torch.randn(n, 10, generator=g)
    return ImageDataset((x.clamp(0, 1) * 255).round().to(torch.uint8).reshape(n, 1, 1, 10), y)


@pytest.fixture(scope="module")
def toys():
    return toy(2000, 0), toy(1000, 1)


@pytest.mark.parametrize("bench", [supervised_benchmark, contrastive_benchmark])
def test_separable_toy_reaches_log10(toys, bench):
    kw = dict(embed_dim=16) if bench is contrastive_benchmark else {}
    r = bench(*toys, "MINE", epochs=10, lr=3e-3, hidden=64, **kw)
    assert r["true_mi"] == pytest.approx(math.log(10)) and r["accuracy"] == 1.0 and not r["diverged"]
    assert abs(r["mi"] - math.log(10)) < 0.1


def test_untrained_network_is_far_from_log10(toys):
    "One step is not enough: a test that the toy check above can fail."
    r = supervised_benchmark(*toys, "MINE", max_steps=1, hidden=64)
    assert r["steps"] == 1 and r["mi"] < 1.0


def test_benchmark_errors(toys):
    with pytest.raises(ValueError, match="batch_size"): supervised_benchmark(*toys, "MINE", batch_size=5000)
    with pytest.raises(ValueError, match="unknown loss"): contrastive_benchmark(*toys, "NCE")
    with pytest.raises(ValueError, match="epochs"): supervised_benchmark(*toys, "MINE", epochs=0)
    with pytest.raises(ValueError, match="n_reference"): contrastive_benchmark(*toys, "MINE", n_reference=0)


def test_mean_ci_and_table2_marks():
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    runs = pd.DataFrame([dict(task="clb", loss="NWJ", remine_lambda=lam, seed=s, mi=mi + 0.05 * s, mi_clipped=mi + 0.05 * s, accuracy=acc + 0.01 * s,
                              diverged=lam == 0, true_mi=math.log(10))
                         for s in range(3) for lam, mi, acc in ((0.0, 0.0, 0.1), (0.01, 2.0, 0.8))])
    t = table2(runs, {("clb", "NWJ"): 0.01}).iloc[0]
    assert (t.mi_better, t.mi_disjoint, t.acc_better, t.acc_disjoint) == ("regularised", True, "regularised", True)
    assert (t.diverged_orig, t.diverged_reg, t.seeds) == (3, 0, 3)
    assert (t.failed_orig, t.failed_reg) == (3, 0)   # diverged, and at chance accuracy
