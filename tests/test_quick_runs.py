"scripts/quick_runs.py: the table behind the quick WDIM settings, read from finished run folders."
import importlib.util, json
from pathlib import Path

import pytest


def test_quick_runs_table_reads_run_folders(tmp_path):
    "scripts/quick_runs.py: one row per finished run, read from its config.json and eval.json; K >= B - 1 reads as all."
    spec = importlib.util.spec_from_file_location("quick_runs", Path(__file__).resolve().parents[1] / "scripts" / "quick_runs.py")
    q = importlib.util.module_from_spec(spec); spec.loader.exec_module(q)
    probe = lambda v: {"mlp": v, "linear": v - 0.01}
    full = dict(all_labels=dict(n_train=60000, probe=dict(conv=probe(0.91)), random_encoder=dict(conv=probe(0.89))))
    for name, k, lr, xv in (("a", None, {}, {}), ("b", 15, dict(lr_schedule="cosine", augment="resized_crop_flip"), dict(cross_view=True)),
                               ("c", 127, {}, dict(cross_view=True, symmetric=True, critic_hidden=128))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(dict(method="wdim", epochs=7, batch_size=128, seed=1,
                                                                   options=dict(global_negatives=k, **xv), **lr)))
        (tmp_path / name / "eval.json").write_text(json.dumps(dict(
            timing=dict(steps=100, train_seconds=10.0, threads=2), probe=dict(y=probe(0.8), fc=probe(0.81), conv=probe(0.82)),
            kmeans_acc=0.5, baselines=dict(raw=probe(0.84), random_encoder=dict(probe=dict(y=probe(0.7)))),
            config=dict(n_test=10000), provenance=dict(commit="abc", dirty=False, hardware=dict(cpu="some CPU")),
            **(full if name == "b" else {}))))
    rows = [q.row(tmp_path / n) for n in "abc"]
    assert [r["global_negatives"] for r in rows] == ["all (B - 1)", 15, "all (B - 1)"]
    assert [r["lr_schedule"] for r in rows] == ["constant", "cosine", "constant"]   # a run from before the field: constant
    assert [r["cross_view"] for r in rows] == [False, True, True]                 # a run from before the option: one view
    assert [r["symmetric"] for r in rows] == [False, False, True]                 # likewise one direction
    assert [r["augment"] for r in rows] == [None, "resized_crop_flip", None]      # as the run recorded it
    assert [r["critic_hidden"] for r in rows] == [None, None, 128]
    assert [r["conv_mlp_all_labels"] for r in rows] == [None, 0.91, None]         # the all-label probe where the run made it
    assert rows[0]["images_per_s"] == 1280 and rows[0]["cpu"] == "some CPU" and rows[0]["y_mlp"] == 0.8 and rows[0]["raw_mlp"] == 0.84
    with pytest.raises(SystemExit, match="no eval.json"): q.main([str(tmp_path / "missing")])


def test_probe_labels_reads_runs_at_each_label_count(tmp_path, monkeypatch):
    "scripts/probe_labels.py: trained, untrained and raw-pixel MLP probes per run and label count, from the checkpoint."
    from wdim_nb.learner import fit, flat_config
    monkeypatch.setenv("IN_TEST", "1")            # figures go to a scratch folder
    spec = importlib.util.spec_from_file_location("probe_labels", Path(__file__).resolve().parents[1] / "scripts" / "probe_labels.py")
    p = importlib.util.module_from_spec(spec); spec.loader.exec_module(p)
    fit(flat_config(method="dim_l", dataset="synthetic", batch_size=8, max_steps=2, out_dir=str(tmp_path), name="r"), progress=False)
    df = p.main([str(tmp_path / "r"), "--n-train", "16", "all", "--threads", "1"])
    assert sorted(set(df.n_train)) == [16, df.n_train.max()] and df.n_train.max() > 16
    assert set(df.encoder) == {"trained", "untrained", "raw pixels"} and df.mlp.between(0, 1).all()
    assert set(df[df.encoder == "trained"].tap) == {"conv", "fc", "y"}
    with pytest.raises(SystemExit, match="no checkpoint"): p.main([str(tmp_path / "missing")])


def test_supervised_ceiling_trains_and_probes(tmp_path, monkeypatch):
    "scripts/supervised_ceiling.py: the quick encoder trained by labels (its loss falls), then MLP-probed per tap; bad input refused."
    monkeypatch.setenv("IN_TEST", "1")            # figures go to a scratch folder
    spec = importlib.util.spec_from_file_location("sup", Path(__file__).resolve().parents[1] / "scripts" / "supervised_ceiling.py")
    s = importlib.util.module_from_spec(spec); spec.loader.exec_module(s)
    from wdim_nb.data import get_dataset
    from wdim_nb.learner import Config, resolved
    cfg = resolved(Config(method="wdim", dataset="synthetic", batch_size=32))
    enc, seconds, losses = s.train(cfg, get_dataset("synthetic", "train"), 4)
    assert seconds > 0 and not enc.training and losses[-1] < 0.5 * losses[0]   # the labels are learnt
    df = s.main(["--dataset", "synthetic", "--batch-size", "32", "--labels", "64", "all", "--epochs", "1", "1"])
    assert list(df.trained_on.unique()) == [64, 512] and set(df.tap) == {"conv", "fc", "y"} and df.mlp.between(0, 1).all()
    with pytest.raises(SystemExit, match="one --epochs per --labels"): s.main(["--labels", "10", "all", "--epochs", "1"])
    with pytest.raises(SystemExit, match="make no batch"): s.main(["--dataset", "synthetic", "--labels", "8", "--epochs", "1"])
