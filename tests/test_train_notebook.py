"nbs/train.ipynb under papermill: synthetic data, a handful of steps, tiny evaluation; bad parameters fail first."
import json

import papermill as pm
import pytest

from wdim_nb.core import repo_root

NB = repo_root() / "nbs" / "train.ipynb"
FAST_EVAL = dict(taps=["y"], probes=["mlp", "linear"], mlp_epochs=1, ndm_steps=5, mine_steps=5, raw=False)


def test_train_notebook_runs_from_nbs_folder(tmp_path):
    "JupyterLab's working directory is nbs/; the run must still land where out_dir says and hold every artefact."
    pm.execute_notebook(str(NB), str(tmp_path / "out.ipynb"), kernel_name="python3", cwd=str(NB.parent), progress_bar=False,
                        parameters=dict(dataset="synthetic", max_steps=2, batch_size=16, out_dir=str(tmp_path), name="nb",
                                        eval_train=128, eval_test=64, eval_options=FAST_EVAL, progress=False))
    run = tmp_path / "nb"
    for f in ("config.json", "metrics.csv", "checkpoint.pt", "eval.json", "loss_curves.png"): assert (run / f).exists(), f
    cfg, ev = json.loads((run / "config.json").read_text()), json.loads((run / "eval.json").read_text())
    assert cfg["method"] == "wdim" and cfg["max_steps"] == 2
    assert set(ev["probe"]["y"]) == {"mlp", "linear"} and "y" in ev["baselines"]["random_encoder"]["probe"]
    assert len((run / "metrics.csv").read_text().splitlines()) == 3          # header + 2 steps


def test_train_notebook_rejects_bad_parameters_before_work(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="valid: dim_g"):
        pm.execute_notebook(str(NB), str(tmp_path / "bad.ipynb"), kernel_name="python3", progress_bar=False,
                            parameters=dict(method="wdim_xyz", dataset="synthetic", out_dir=str(tmp_path), name="bad"))
    assert not (tmp_path / "bad").exists()
