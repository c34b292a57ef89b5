"""One table from finished `train.ipynb` runs: settings, training time and probes per run, beside the baselines.

    python scripts/quick_runs.py runs/A runs/B ... --name train_quick_choice

Each run folder holds `config.json` and `eval.json` (written by `nbs/train.ipynb`); every row is read from them, with
the commit each run recorded, so the table describes exactly the runs it names. Writes figures/<name>.{csv,json}.
"""
import argparse, json
from pathlib import Path

import pandas as pd

from wdim_nb.core import save_table
from wdim_nb.learner import UNRECORDED


def _negatives(cfg):
    k = cfg["options"].get("global_negatives")
    return "all (B - 1)" if k is None or k >= cfg["batch_size"] - 1 else k


def row(run: Path) -> dict:
    cfg, ev = (json.loads((run / f).read_text()) for f in ("config.json", "eval.json"))
    t, p, base = ev["timing"], ev["probe"], ev["baselines"]
    return dict(run=run.name, method=cfg["method"], epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                global_negatives=_negatives(cfg), lr_schedule=cfg.get("lr_schedule", UNRECORDED["lr_schedule"]),
                cross_view=cfg["options"].get("cross_view", False),   # a run from before the option: one view
                symmetric=cfg["options"].get("symmetric", False),     # likewise: one direction
                critic_hidden=cfg["options"].get("critic_hidden"),
                augment=cfg.get("augment"),
                seed=cfg["seed"], steps=t["steps"],
                train_seconds=round(t["train_seconds"], 1), images_per_s=round(t["steps"] * cfg["batch_size"] / t["train_seconds"]),
                threads=t["threads"], y_mlp=p["y"]["mlp"], fc_mlp=p["fc"]["mlp"], conv_mlp=p["conv"]["mlp"],
                conv_mlp_all_labels=ev.get("all_labels", {}).get("probe", {}).get("conv", {}).get("mlp"),   # None: not measured
                kmeans_acc=ev["kmeans_acc"], raw_mlp=base["raw"]["mlp"], random_y_mlp=base["random_encoder"]["probe"]["y"]["mlp"],
                n_test=ev["config"]["n_test"], cpu=ev["provenance"]["hardware"]["cpu"],
                commit=ev["provenance"]["commit"], dirty=ev["provenance"]["dirty"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--name", default="train_quick_choice")
    a = ap.parse_args(argv)
    missing = [str(r) for r in a.runs if not (r / "eval.json").is_file()]
    if missing: raise SystemExit(f"not finished runs (no eval.json): {', '.join(missing)}")
    df = pd.DataFrame([row(r) for r in a.runs])
    print(df.to_string(index=False))
    print(save_table(df, a.name, dict(runs=[str(r) for r in a.runs])))


if __name__ == "__main__":
    main()
