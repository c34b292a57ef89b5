"bench/sinkhorn.py: a rung's label rebuilds the rung, so tables written by older ladders can be re-run."
import importlib.util
from pathlib import Path

import pytest
import torch


def _bench():
    spec = importlib.util.spec_from_file_location("sinkhorn_bench", Path(__file__).resolve().parents[1] / "bench" / "sinkhorn.py")
    b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)
    return b


def test_every_label_rebuilds_its_rung():
    b = _bench()
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 3, generator=g), torch.rand(16, 3, generator=g)
    for method in ("ours", "pot_sinkhorn_log"):   # GeomLoss is optional; its labels parse the same way
        for label, k, build in b.LADDERS[method]:
            k2, build2 = b.rung(method, label)
            assert k2 == k and float(build2(0.05)(x, y)) == pytest.approx(float(build(0.05)(x, y)), rel=1e-6)
    assert b.rung("ours", "eps x2, tol 0.05, scaling 0.25")[0] == 2   # a rung no longer on the ladder
    with pytest.raises(ValueError, match="unknown method"): b.rung("nope", "eps x1, tol 0.1")
