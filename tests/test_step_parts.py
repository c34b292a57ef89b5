"bench/step_parts.py: the step timed part by part, the parts together doing the step's arithmetic."
import importlib.util
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode


def _load(name):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "bench" / f"{name}.py")
    b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)
    return b


def _flops(f):
    with FlopCounterMode(display=False) as fc: f()
    return fc.get_total_flops()


def test_parts_do_the_steps_arithmetic(tmp_path):
    b = _load("step_parts")
    dev, shape = torch.device("cpu"), (1, 28, 28)
    parts = b.parts("wdim", 8, shape, dev, False)
    assert list(parts) == ["encoder, the batch (the critics' taps)", "encoder, the second view (the code y)",
                           "local critic and its bound", "global critic and its bound", "prior term (Sinkhorn)",
                           "gradient norms", "optimiser"]
    step = b.setup("wdim", 8, shape, dev, False, False, True)[0]
    whole, split = _flops(step), sum(_flops(f) for f in parts.values())
    assert whole > 0 and abs(split - whole) / whole < 0.01, (split, whole)   # nothing left out, nothing counted twice
    df = b.main(["--batch-size", "8", "--steps", "1", "--reps", "1", "--fp32", "--folder", str(tmp_path)])
    assert list(df.part) == [*parts, "whole step"] and (df.ms > 0).all()
    assert (tmp_path / "bench_step_parts.csv").exists() and (tmp_path / "bench_step_parts.json").exists()
    one = b.parts("dim_l", 8, shape, dev, False)                    # one view, an adversarial prior: no Sinkhorn
    assert "encoder, the second view (the code y)" not in one and "prior term (Sinkhorn)" not in one
