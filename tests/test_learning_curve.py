"scripts/learning_curve.py: each method's quick run with probes on the way, the baselines, and the record beside them."
import json, sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FMNIST.exists(), reason="needs Debian's dataset-fashion-mnist")
@pytest.mark.parametrize("jobs", [1, 2])
def test_curves_probe_each_method_and_record_settings(tmp_path, monkeypatch, jobs):
    import learning_curve
    monkeypatch.setenv("IN_TEST", "1"); monkeypatch.setattr("tempfile.tempdir", str(tmp_path))   # scratch figures
    methods = ["mige", "wdim+cross_view=False+augment=none"]
    learning_curve.main(["--steps", "4", "--evals", "2", "--n-train", "64", "--jobs", str(jobs), "--methods", *methods])
    out = tmp_path / "wdim_nb_figures"
    df = pd.read_csv(out / "train_learning_curve.csv")
    trained = df[df.step > 0]
    assert trained.groupby("method", sort=False).step.apply(list).to_dict() == {m: [2, 4] for m in methods}
    assert set(df[df.step == 0].method) == {"raw_pixels", "random_network"}
    assert df.y_mlp.between(0, 1).all() and (trained.seconds > 0).all()
    rec = json.loads((out / "train_learning_curve.json").read_text())["params"]
    assert rec["n_test"] == 10_000 and rec["jobs"] == jobs and rec["threads"] >= 1
    assert rec["configs"]["wdim+cross_view=False+augment=none"]["augment"] == "none"
    assert rec["configs"]["wdim+cross_view=False+augment=none"]["lr_schedule"] == "cosine"   # the preset's own schedule
    assert (out / "train_learning_curve.png").is_file()


def test_an_override_of_none_is_refused_before_training():
    import learning_curve
    with pytest.raises(SystemExit, match="augment=none"):
        learning_curve.main(["--methods", "wdim+augment=None"])
    with pytest.raises(SystemExit, match="lr=None"):
        learning_curve.main(["--methods", "wdim", "--set", "lr=None"])
