"nbs/train.ipynb under papermill: synthetic data, a handful of steps, tiny evaluation; bad parameters fail first."
import json

import papermill as pm
import pytest

from wdim_nb.core import repo_root

NB = repo_root() / "nbs" / "train.ipynb"
FAST_EVAL = dict(taps=["y"], probes=["mlp", "linear"], mlp_epochs=1, ndm_steps=5, mine_steps=5, raw=False)


def test_train_notebook_runs_from_nbs_folder(tmp_path):
    "JupyterLab's working directory is nbs/; the run must still land where out_dir says and hold every artefact."
    out = pm.execute_notebook(str(NB), str(tmp_path / "out.ipynb"), kernel_name="python3", cwd=str(NB.parent), progress_bar=False,
                              parameters=dict(dataset="synthetic", max_steps=2, batch_size=16, out_dir=str(tmp_path), name="nb",
                                              eval_train=128, eval_test=64, eval_options=FAST_EVAL, eval_all_labels=["y"], progress=False,
                                              nonfinite="skip", ckpt_every=1, ckpt_minutes=None))
    run = tmp_path / "nb"
    for f in ("config.json", "metrics.csv", "checkpoint.pt", "eval.json", "loss_curves.png"): assert (run / f).exists(), f
    cfg, ev = json.loads((run / "config.json").read_text()), json.loads((run / "eval.json").read_text())
    assert cfg["method"] == "wdim" and cfg["max_steps"] == 2
    assert (cfg["nonfinite"], cfg["ckpt_every"], cfg["ckpt_minutes"]) == ("skip", 1, None)   # settable from the notebook
    assert set(ev["probe"]["y"]) == {"mlp", "linear"} and "y" in ev["baselines"]["random_encoder"]["probe"]
    full = ev["all_labels"]                                                  # DIM's protocol: the probe again on every label
    assert full["n_train"] == 512 > ev["config"]["n_train"] == 128 and set(full["probe"]) == set(full["random_encoder"]) == {"y"}
    assert 0 <= full["probe"]["y"]["mlp"] <= 1 and cfg["eval_all_labels"] == ["y"]
    assert len((run / "metrics.csv").read_text().splitlines()) == 3          # header + 2 steps
    assert ev["provenance"]["commit"] and {"dirty", "hardware", "versions"} <= set(ev["provenance"])   # what produced it
    assert ev["config"]["baselines_key"] and (tmp_path / "_baselines" / f"baselines_{ev['config']['baselines_key']}.json").is_file()
    printed = "".join(o.get("text", "") for c in out.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert f"results in {run}" in printed                                     # says where the results went
    assert "y probe (MLP) fit on all 512 labelled images" in printed


def test_train_notebook_rejects_bad_parameters_before_work(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="valid methods: dim_g"):
        pm.execute_notebook(str(NB), str(tmp_path / "bad.ipynb"), kernel_name="python3", progress_bar=False,
                            parameters=dict(method="wdim_xyz", dataset="synthetic", out_dir=str(tmp_path), name="bad"))
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("params, msg", [(dict(lrr=0.5), r"unknown setting\(s\) \['lrr'\]"),
                                          (dict(eval_train="abc"), "eval_train='abc' has type str"),
                                          (dict(local_critic="bilinear"), "local_critic='bilinear' is unknown; valid: dot, concat"),
                                          (dict(eval_options=dict(prob=["mlp"])), r"unknown key\(s\) \['prob'\]"),
                                          (dict(eval_options=dict(taps=["y"])), r"eval_all_labels \['conv'\] are not among the evaluated taps")])
def test_train_notebook_rejects_unknown_and_evaluation_parameters_before_training(tmp_path, params, msg):
    "papermill only warns about an unknown -p name; the notebook must stop, and evaluation settings fail before training."
    with pytest.raises(pm.PapermillExecutionError, match=msg):
        pm.execute_notebook(str(NB), str(tmp_path / "bad.ipynb"), kernel_name="python3", progress_bar=False,
                            parameters=dict(dataset="synthetic", max_steps=1, batch_size=16, out_dir=str(tmp_path), name="u", **params))
    assert not (tmp_path / "u").exists()
