"The table sweep: a two-run grid end to end through papermill, killed after its first run and restarted."
import json, os, signal, subprocess, sys, time

import pytest

from wdim_nb.sweep import GRIDS, Run, aggregate, runs_of, write_tables

TINY = dict(preset="quick", dataset="synthetic", seeds=(0, 1), shared=dict(max_steps=2, batch_size=16),
            eval=dict(eval_train=64, eval_test=32, eval_options=dict(taps=["y"], probes=["mlp"], mlp_epochs=1,
                                                                     ndm_steps=0, mine_steps=0, raw=False)),
            tables={"t": [("DIM(L)", "dim_l", dict(critic_hidden=16))]})


def test_every_grid_row_is_a_valid_configuration():
    from wdim_nb.learner import check, flat_config
    for name, grid in GRIDS.items():
        for _, _, run in runs_of(grid):
            p = run.parameters("runs", grid["eval"])
            check(flat_config(**{k: v for k, v in p.items() if k != "progress"}), data=False)


def test_sweep_survives_a_kill_and_restart(tmp_path):
    code = ("import sys, json; from wdim_nb.sweep import sweep; "
            f"sweep(json.loads(sys.argv[1]), sys.argv[2], progress=False)")
    args = [sys.executable, "-c", code, json.dumps(TINY), str(tmp_path)]
    first = Run("dim_l", "synthetic", "quick", 0, tuple(sorted({**TINY["shared"], "critic_hidden": 16}.items())))
    p = subprocess.Popen(args, start_new_session=True)
    deadline = time.time() + 300
    while not (tmp_path / first.name / "eval.json").exists() and time.time() < deadline and p.poll() is None: time.sleep(0.5)
    os.killpg(p.pid, signal.SIGKILL); p.wait()                       # killed during (or after) the second run
    done_at = (tmp_path / first.name / "eval.json").stat().st_mtime
    subprocess.run(args, check=True, timeout=300)                    # restarted: skips the first, finishes the second
    assert (tmp_path / first.name / "eval.json").stat().st_mtime == done_at
    tab = aggregate(TINY, tmp_path)["t"]
    assert tab.loc[0, "seeds"] == 2 and 0 <= tab.loc[0, "y"] <= 1 and tab.loc[0, "y ±95%"] >= 0   # two seeds: an interval
    paths = write_tables(TINY, tmp_path, tmp_path / "tables")
    md = paths[0].with_suffix(".md").read_text()
    assert "| row |" in md and "DIM(L)" in md and json.loads(paths[0].with_suffix(".json").read_text())["params"]["seeds"] == [0, 1]


def test_unknown_table_fails_before_work():
    with pytest.raises(ValueError, match="unknown table"): runs_of(GRIDS["quick"], tables=["nope"])


def test_sweep_runs_two_at_a_time_and_skips_finished_runs(tmp_path):
    from wdim_nb.sweep import sweep
    with pytest.raises(ValueError, match="jobs=0"): sweep(TINY, tmp_path, jobs=0, progress=False)
    first = sweep(TINY, tmp_path, jobs=2, progress=False)
    assert sorted(first.status) == ["done", "done"], first
    again = sweep(TINY, tmp_path, jobs=2, progress=False)
    assert list(again.status) == ["done before", "done before"]
    assert aggregate(TINY, tmp_path)["t"].loc[0, "seeds"] == 2


def test_committed_tables_read_and_a_broken_one_is_caught():
    from wdim_nb.sweep import check_table, load_table, side_by_side
    df, meta = load_table("mige_table1")
    check_table(df, meta, "mige_table1")
    assert list(side_by_side(df).columns[:2]) == ["conv", "paper conv"]
    bad = df.copy(); bad.iloc[0, bad.columns.get_loc("y")] = 1.5
    with pytest.raises(AssertionError): check_table(bad, meta, "mige_table1")
    with pytest.raises(AssertionError): check_table(df.iloc[::-1], meta, "mige_table1")   # rows out of order
