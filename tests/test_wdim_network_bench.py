"bench/wdim_network.py: the eager DeepInfomaxPytorch-style baseline trains the project's networks and computes its loss."
import importlib.util
from pathlib import Path

import pytest
import torch


def _bench():
    spec = importlib.util.spec_from_file_location("wdim_network", Path(__file__).resolve().parents[1] / "bench" / "wdim_network.py")
    b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)
    return b


def _pair(b):
    from wdim_nb.learner import check, flat_config
    from wdim_nb.methods import get_method
    cfg = check(flat_config(method="wdim", dataset="synthetic", batch_size=4, **b.OVERRIDES), data=False)
    torch.manual_seed(1); m = get_method("wdim")
    return m, cfg, m.build(cfg, (3, 32, 32)), b.EagerWDIM()


def test_baseline_mi_terms_equal_the_projects_on_the_same_weights():
    b = _bench(); m, cfg, ours, eager = _pair(b)
    b.copy_weights(eager, ours)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    with torch.no_grad(): te, to = eager(x), m.loss(ours, x, cfg)[0]
    assert float(te["local"]) == pytest.approx(float(to["local"]), rel=1e-4, abs=1e-5)
    assert float(te["glob"]) == pytest.approx(float(to["global"]), rel=1e-4, abs=1e-5)
    assert float(te["prior"]) > 0                      # a Sinkhorn divergence between codes and prior samples
    with torch.no_grad(): eager.global_d.l0.weight.copy_(ours["global_critic"].l0.weight)   # [y; map] read as [map; y]
    with torch.no_grad(): glob = float(eager(x)["glob"])
    assert glob != pytest.approx(float(to["global"]), rel=1e-4, abs=1e-5)


def test_dry_run_times_every_step():
    df = _bench().main(["--batch", "2", "--steps", "1", "--reps", "1", "--threads", "1", "--no-save"])
    assert df.step.iloc[0].startswith("eager") and df.speedup_over_eager.iloc[0] == 1.0
    assert len(df) in (2, 3) and (df.images_per_s > 0).all()   # bf16 only where the CPU is fast at it
