"bench/step_profile.py: the step's operator time split by kind, the kinds covering all of it."
import importlib.util
from pathlib import Path


def test_step_profile_splits_the_whole_step_by_kind(tmp_path):
    spec = importlib.util.spec_from_file_location("step_profile", Path(__file__).resolve().parents[1] / "bench" / "step_profile.py")
    b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)
    df = b.main(["--method", "dim_l", "--batch-size", "4", "--steps", "1", "--fp32", "--folder", str(tmp_path)])
    assert list(df.kind) == [*b.KINDS, "other"] and abs(df.share.sum() - 1) < 0.01
    mine = df.set_index("kind").ms_per_step
    assert mine["matrix products (mm, addmm, bmm)"] > 0 and mine["convolutions, forward and backward"] > 0   # Adam is fused only where torch has it
    assert (tmp_path / "bench_step_profile.csv").exists() and (tmp_path / "bench_step_profile.json").exists()
