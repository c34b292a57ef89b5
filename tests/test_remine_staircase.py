"scripts/remine_staircase.py end to end on a few steps: every loss x lambda x seed once, resumed from its cache, tables right."
import json, math, sys

import pandas as pd
import pytest

from wdim_nb.core import repo_root

sys.path.insert(0, str(repo_root() / "scripts"))
import remine_staircase as S   # noqa: E402


def test_staircase_runs_every_loss_once_resumes_and_writes_both_tables(tmp_path, capsys):
    args = ["--steps", "4", "--seeds", "2", "--lambdas", "1", "0.1", "--jobs", "2", "--oracle-batches", "2",
            "--cache", str(tmp_path / "cache"), "--folder", str(tmp_path / "fig")]
    S.main(args)
    assert "36 runs, 0 already" in capsys.readouterr().out          # 6 losses x (original, 2 lambdas) x 2 seeds
    run = pd.read_csv(tmp_path / "cache" / "MINE_lambda1_seed1_steps4.csv")
    assert list(run.true_mi) == [2.0] * 4 + [4.0] * 4 + [6.0] * 4 + [8.0] * 4 + [10.0] * 4   # the staircase's levels
    bv = pd.read_csv(tmp_path / "fig" / "instability_staircase.csv")
    assert len(bv) == 6 * 2 * 5 and set(bv.family) == set(S.FAMILIES)   # families x (original, lambda 1) x levels
    assert (bv.n == 2 * 2).all()                                         # each level's second half, pooled over 2 seeds
    cap = bv[bv.family == "InfoNCE"].optimal_critic                     # a perfect critic: InfoNCE <= log 64 < 10 nats
    assert (cap <= math.log(64)).all() and cap.iloc[-1] > 3.5 and bv.optimal_critic.notna().all()
    assert json.loads((tmp_path / "fig" / "instability_staircase.json").read_text())["params"]["remine_lambda"] == 1.0
    lam = pd.read_csv(tmp_path / "fig" / "instability_staircase_lambda.csv")
    assert sorted(lam.remine_lambda.unique()) == [0.0, 0.1, 1.0] and len(lam) == 6 * 3 * 2 * 5
    assert (tmp_path / "fig" / "instability_staircase_lambda.png").exists()
    (tmp_path / "cache" / "JS_lambda0.1_seed0_steps4.csv").unlink()
    S.main(args)                                                          # a restart runs only what is missing
    assert "36 runs, 35 already" in capsys.readouterr().out


def test_staircase_rejects_bad_arguments_before_any_run(tmp_path):
    for bad in (["--lambdas", "0"], ["--seeds", "0"], ["--steps", "1"]):
        with pytest.raises(SystemExit): S.main([*bad, "--cache", str(tmp_path / "c"), "--folder", str(tmp_path / "f")])
    assert not (tmp_path / "c").exists()
