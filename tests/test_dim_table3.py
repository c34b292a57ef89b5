"scripts/dim_table3.py end to end on three tiny runs: SVMs and the decoder measured once per run, MINE / NDM read from eval.json."
import json, sys

import pandas as pd

from wdim_nb.core import repo_root
from wdim_nb.learner import fit, flat_config
from wdim_nb.sweep import runs_of

sys.path.insert(0, str(repo_root() / "scripts"))
import dim_table3 as T   # noqa: E402

GRID = dict(preset="quick", dataset="synthetic", seeds=(0,), shared=dict(max_steps=2, batch_size=16),
            eval=dict(eval_train=96, eval_test=48),
            tables={"dim_table1": [(f"{n}, JSD", m, dict(mi_bound="jsd", critic_hidden=16))
                                   for n, m in (("DIM(G)", "dim_g"), ("DIM(L+G)", "dim_lg"), ("DIM(L)", "dim_l"))]})


def test_dim_table3_measures_each_run_once_and_reads_mine_ndm_from_its_evaluation(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(T.GRIDS, "quick", GRID)
    for i, (_, _, run) in enumerate(runs_of(GRID)):
        p = {k: v for k, v in run.parameters(tmp_path, {}).items() if k != "progress"}
        fit(flat_config(**p), progress=False)
        (tmp_path / run.name / "eval.json").write_text(json.dumps(dict(mine=1.0 + i, ndm=0.5, ndm_sigmoid=0.25,
                                                                         provenance=dict(commit="abc1234", dirty=False))))
    args = ["--runs", str(tmp_path), "--decoder-steps", "5", "--svm-runs", "2", "--folder", str(tmp_path / "tables")]
    T.main(args)
    assert "3 finished runs, 3 to measure" in capsys.readouterr().out
    df = pd.read_csv(tmp_path / "tables" / "dim_table3_quick.csv").set_index("row")
    assert list(df.index) == ["DIM(G)", "DIM(L+G)", "DIM(L)"] and (df.seeds == 1).all()
    assert list(df["MINE I(X;Y)"]) == [1.0, 2.0, 3.0] and (df["NDM"] == 0.25).all() and (df["NDM (no sigmoid)"] == 0.5).all()
    assert df[["SVM (conv)", "SVM (fc)", "SVM (Y)"]].stack().between(0, 1).all() and df["MS-SSIM"].between(0, 1).all()
    assert df.at["DIM(L)", "paper SVM (conv)"] == 0.6325 and df.at["DIM(L+G)", "paper MINE I(X;Y)"] == 101.65
    params = json.loads((tmp_path / "tables" / "dim_table3_quick.json").read_text())["params"]
    assert "abc1234" in params["run_commits"] and params["svm_runs"] == 2
    assert "Runs at commit" in (tmp_path / "tables" / "dim_table3_quick.md").read_text()
    T.main(args)                                                   # a rerun measures nothing again
    assert "3 finished runs, 0 to measure" in capsys.readouterr().out
    T.main(args[:-4] + ["--svm-runs", "3", "--folder", str(tmp_path / "tables"), "--measure-rows", "DIM(L)"])   # other settings:
    assert "1 to measure" in capsys.readouterr().out                                                             # measured afresh
    df = pd.read_csv(tmp_path / "tables" / "dim_table3_quick.csv").set_index("row")
    assert list(df.seeds) == [0, 0, 1]                 # a table never mixes runs measured with different settings
