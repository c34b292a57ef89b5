"The table sweep: a two-run grid end to end through papermill, killed after its first run and restarted."
import json, os, signal, subprocess, sys, time

import pytest

from wdim_nb.sweep import GRIDS, Run, aggregate, runs_of, write_tables

TINY = dict(preset="quick", dataset="synthetic", seeds=(0, 1), shared=dict(max_steps=2, batch_size=16),
            eval=dict(eval_train=64, eval_test=32, eval_options=dict(taps=["y"], probes=["mlp"], mlp_epochs=1,
                                                                     ndm_steps=0, mine_steps=0, raw=False), eval_all_labels=[]),
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
    params = json.loads(paths[0].with_suffix(".json").read_text())["params"]
    assert "| row |" in md and "DIM(L)" in md and params["seeds"] == [0, 1]
    ran = json.loads((tmp_path / first.name / "config.json").read_text())
    assert params["as_run"]["DIM(L)"]["batch_size"] == ran["batch_size"] == 16             # read from the run's own file
    assert params["as_run"]["DIM(L)"]["local_critic"] == ran["options"]["local_critic"]
    ev = json.loads((tmp_path / first.name / "eval.json").read_text())
    commit = ev["provenance"]["commit"] + ("+changes" if ev["provenance"]["dirty"] else "")
    assert params["run_commits"] == [commit] and f"Runs at commit {commit} on " in md   # the runs' commit, not today's
    assert len(params["run_hardware"]) == 1 and params["run_hardware"][0] in md          # and the runs' machine


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


def test_table_settings_are_the_runs_own_not_todays_code(tmp_path):
    "A table shows the settings its runs recorded; a later change of the preset must not rewrite what it says they ran with."
    from dataclasses import asdict
    from wdim_nb.learner import flat_config, resolved
    from wdim_nb.sweep import _as_run, row_settings
    for lr, (_, _, run) in zip((1e-3, 5e-4), runs_of(TINY)):             # two finished seeds that trained differently
        (tmp_path / run.name).mkdir()
        cfg = asdict(resolved(flat_config(method=run.method, dataset=run.dataset, seed=run.seed, lr=lr, **dict(run.settings))))
        (tmp_path / run.name / "config.json").write_text(json.dumps(cfg | {"batch_size": 999}, default=str))
        (tmp_path / run.name / "eval.json").write_text("{}")
    ran = _as_run(TINY, "t", tmp_path)["DIM(L)"]
    assert ran["batch_size"] == 999 and ran["lr"] == [1e-3, 5e-4] and ran["local_critic"] == "dot"
    meta = dict(params=dict(TINY, rows={"DIM(L)": ["dim_l", {"critic_hidden": 16}], "never ran": ["dim_g", {}]},
                            as_run={"DIM(L)": ran}))
    s = row_settings(meta)
    assert s.loc["DIM(L)", "batch_size"] == 999 and s.loc["never ran", "batch_size"] == 16   # unrun rows: resolved today
    assert row_settings(meta, "paper").loc["DIM(L)", "batch_size"] == 64                      # another grid: resolved


def test_records_rebuild_the_tables_without_the_run_folders(tmp_path):
    "write_tables keeps one record per finished run; the tables and the sweep's skipping then need no run folder."
    import shutil
    from dataclasses import asdict
    from wdim_nb.learner import flat_config, resolved
    from wdim_nb.sweep import finished, keep_records
    runs = [r for *_, r in runs_of(TINY)]
    for acc, run in zip((0.6, 0.8), runs):
        (tmp_path / run.name).mkdir()
        cfg = asdict(resolved(flat_config(method=run.method, dataset=run.dataset, seed=run.seed, **dict(run.settings))))
        (tmp_path / run.name / "config.json").write_text(json.dumps(cfg, default=str))
        (tmp_path / run.name / "eval.json").write_text(json.dumps({"probe": {"y": {"mlp": acc}}, "provenance": {"commit": "abc1234"}}))
    (tmp_path / "unrelated").mkdir()                                   # a folder the sweep did not write is left alone
    folder = tmp_path / "tables"
    before = write_tables(TINY, tmp_path, folder)[0].read_text()
    assert sorted(p.name for p in (folder / "runs").iterdir()) == sorted(f"{r.name}.json" for r in runs)
    for run in runs: shutil.rmtree(tmp_path / run.name)
    assert not any(finished(r, tmp_path) for r in runs) and all(finished(r, tmp_path, folder / "runs") for r in runs)
    tab = aggregate(TINY, tmp_path, folder / "runs")["t"]
    assert tab.loc[0, "seeds"] == 2 and abs(tab.loc[0, "y"] - 0.7) < 1e-9
    assert write_tables(TINY, tmp_path, folder)[0].read_text() == before     # the same table from the records alone
    assert (tmp_path / "unrelated").is_dir() and keep_records(TINY, tmp_path, folder / "runs") == []
    (tmp_path / runs[0].name).mkdir()                                  # a run folder, where there is one, wins
    (tmp_path / runs[0].name / "eval.json").write_text(json.dumps({"probe": {"y": {"mlp": 1.0}}}))
    assert aggregate(TINY, tmp_path, folder / "runs")["t"].loc[0, "y"] == 0.9


def test_a_table_with_its_own_seeds_and_evaluation(tmp_path):
    "DIM App. A.4's way: one seed and a decoder's MS-SSIM for one table; the other table keeps the grid's, without the column."
    from wdim_nb.sweep import sweep
    grid = dict(TINY, seeds=(0,), tables=dict(TINY["tables"], a4=[("DIM(L)", "dim_l", dict(critic_hidden=16))]),
                table_options=dict(a4=dict(seeds=(1,), eval_options=dict(decoder_steps=3))))
    runs = {t: r for t, _, r in runs_of(grid)}
    assert (runs["t"].seed, runs["a4"].seed) == (0, 1)
    assert runs["a4"].parameters("runs", grid["eval"])["eval_options"] == dict(TINY["eval"]["eval_options"], decoder_steps=3)
    assert sorted(sweep(grid, tmp_path, progress=False).status) == ["done", "done"]
    tabs = aggregate(grid, tmp_path)
    assert "MS-SSIM" not in tabs["t"] and 0 < tabs["a4"].loc[0, "MS-SSIM"] <= 1
    meta = json.loads(write_tables(grid, tmp_path, tmp_path / "tables")[1].with_suffix(".json").read_text())["params"]
    assert meta["seeds"] == [1] and meta["eval"]["eval_options"] == dict(TINY["eval"]["eval_options"], decoder_steps=3)


def test_the_paper_grid_declares_the_tables_of_other_datasets():
    "CIFAR-100 and STL-10 tables train on their own dataset, share runs across papers, and carry the papers' numbers."
    from wdim_nb.sweep import PAPER, table_dataset
    g = GRIDS["paper"]
    runs = {(t, label): r for t, label, r in runs_of(g, seeds=[0])}
    assert {r.dataset for (t, _), r in runs.items() if t.endswith("stl10")} == {"stl10"}
    assert {r.dataset for (t, _), r in runs.items() if t.endswith("cifar100")} == {"cifar100"}
    assert runs[("dim_table1", "DIM(G), JSD")].dataset == "cifar10"
    assert runs[("dim_table2_stl10", "DIM(G), JSD")] == runs[("mige_table2_stl10", "DIM (JSD)")]   # one run, two tables
    assert runs[("mige_table2_stl10", "MIGE + RP to 512d")].method == "mige"
    for t in ("dim_table1_cifar100", "dim_table2_stl10", "mige_table1_cifar100", "mige_table2_stl10"):
        assert set(PAPER[t]["rows"]) == {label for label, *_ in g["tables"][t]}, t
    assert {table_dataset(GRIDS["quick"], t) for t in GRIDS["quick"]["tables"]} == {"fashion_mnist"}


def test_run_names_ignore_settings_at_their_unrecorded_value():
    "A run pinned to what runs did before a setting existed keeps their name; any other value is a new run."
    base = Run("wdim", "fashion_mnist", "quick", 0, (("epochs", 1),))
    pinned = Run("wdim", "fashion_mnist", "quick", 0, (("epochs", 1), ("lr_schedule", "constant")))
    other = Run("wdim", "fashion_mnist", "quick", 0, (("epochs", 1), ("lr_schedule", "cosine")))
    assert pinned.name == base.name and other.name != base.name
    assert pinned.parameters("runs", {})["lr_schedule"] == "constant"   # still passed to the run


def test_every_kept_record_is_what_its_settings_train_today():
    "A kept record must be what its run's settings train now: a preset that moves on must not change a table's runs."
    from wdim_nb.core import repo_root
    from wdim_nb.learner import differences, flat_config, resolved
    drift = {}
    for _, label, r in runs_of(GRIDS["quick"]):
        rec = json.loads((repo_root() / "tables" / "runs" / f"{r.name}.json").read_text())["config"]
        cfg = resolved(flat_config(**{k: v for k, v in r.parameters("runs", {}).items() if k not in ("out_dir", "progress")}))
        same = f"global_negatives: None -> {cfg.batch_size - 1}"    # B - 1 negatives is every other code, as None is
        drift |= {f"{label} s{r.seed}": d for d in [[x for x in differences(rec, cfg) if x != same]] if d}
    assert not drift, drift


def test_every_quick_run_has_its_kept_record():
    "The committed tables read `tables/runs/<name>.json`: a change to the names must not orphan them."
    from wdim_nb.core import repo_root
    missing = [r.name for _, _, r in runs_of(GRIDS["quick"]) if not (repo_root() / "tables" / "runs" / f"{r.name}.json").exists()]
    assert not missing, missing
