"""IIC on Fashion-MNIST per perturbation model: a fixed number of steps per run, several seeds, on 1 CPU thread.

Every run trains `iic` (wdim_nb.clustering) with `wdim_nb.learner.fit` on the 60,000 training images and is evaluated
with the method's own `evaluate` on the 10,000 test images: accuracy (Hungarian), NMI, ARI of the sub-head with the
lowest training loss, of the sub-head the others agree with most (`consensus_head`) and of the vote of all sub-heads
(`head_vote`), beside k-means on raw pixels. Writes (all with provenance .json beside them):
  figures/iic_runs.csv          one row per (model, seed), rewritten after every run
  figures/iic_table.csv         per model: mean and 95 % Student-t interval over seeds
  figures/iic_perturbations.png the perturbation models on test images
  figures/iic_confusion.png     confusion matrix of the best model's first seed, and its joint matrix P on test pairs
Runs live in runs/iic_table/<model>_s<seed>/; rerunning continues or reuses them (same settings) instead of retraining.

    python scripts/iic_table.py                                   # every model, seeds 0 1 2
    # the committed table: invocations side by side (one thread each), then joined
    python scripts/iic_table.py --models augment augment_nojitter deform_smooth --out /tmp/iic/A
    python scripts/iic_table.py --models deform_raw wasserstein augment_short --wasserstein-steps 80 --wasserstein-seeds 0 1 --out /tmp/iic/B
    python scripts/iic_table.py --models augment_x3 --seeds 0 --out /tmp/iic/D0        # likewise --seeds 1 -> D1, 2 -> D2
    python scripts/iic_table.py --merge /tmp/iic/A /tmp/iic/B /tmp/iic/D0 /tmp/iic/D1 /tmp/iic/D2
    python scripts/iic_table.py --models augment_deform --seeds 0 --out /tmp/iic/E0      # likewise --seeds 1 -> E1, 2 -> E2
    python scripts/iic_table.py --merge figures /tmp/iic/E0 /tmp/iic/E1 /tmp/iic/E2      # added to the committed table
    python scripts/iic_table.py --models deform_smooth_long --seeds 0 --out /tmp/iic/F0  # likewise 1 -> F1, 2 -> F2; merged
    python scripts/iic_table.py --models deform_smooth_b512 --seeds 0 --out /tmp/iic/G0  # likewise 1 -> G1, 2 -> G2; merged
    python scripts/iic_table.py --models deform_smooth_h10 --seeds 0 1 2 --out /tmp/iic/H  # (re-evaluated with the consensus)
    python scripts/iic_table.py --models deform_smooth_h20 --seeds 0 --out /tmp/iic/J0   # likewise 1 -> J1, 2 -> J2; merged
    python scripts/iic_table.py --models deform_smooth_h10_long --seeds 0 --out /tmp/iic/K0   # likewise 1 -> K1, 2 -> K2; merged
    python scripts/iic_table.py --models deform_smooth_h10_jit1 --seeds 0 --out /tmp/iic/L0   # likewise 1 -> L1, 2 -> L2; merged
    python scripts/iic_table.py --models deform_smooth_h10_rerun --seeds 0 --out /tmp/iic/M0   # likewise 1 -> M1, 2 -> M2; merged
    python scripts/iic_table.py --models deform_smooth_h10_long_rerun --seeds 0 --out /tmp/iic/N0   # likewise 1 -> N1, 2 -> N2; merged
    python scripts/iic_table.py --models deform_smooth_h10_ew2 --seeds 0 --out /tmp/iic/P0    # likewise 1 -> P1, 2 -> P2
    python scripts/iic_table.py --models deform_smooth_h10_ew15 --seeds 0 --out /tmp/iic/Q0   # likewise 1 -> Q1, 2 -> Q2
    python scripts/iic_table.py --merge figures /tmp/iic/P0 /tmp/iic/P1 /tmp/iic/P2 /tmp/iic/Q0 /tmp/iic/Q1 /tmp/iic/Q2
    python scripts/iic_table.py --models deform_smooth_h10_pair --out /tmp/iic/R        # these two side by side on one machine
    python scripts/iic_table.py --models deform_smooth_h10_ew2_pair --out /tmp/iic/S
    python scripts/iic_table.py --merge figures /tmp/iic/R /tmp/iic/S
    python scripts/iic_table.py --models augment --seeds 0 --steps 20   # a smoke run
"""
import argparse, json, math
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from scipy import stats

from wdim_nb import clustering as CL
from wdim_nb.core import figures_dir, save_figure, save_table
from wdim_nb.data import get_dataset, to_float
from wdim_nb.learner import Config, fit

MODELS = {   # name -> options of the iic method
    "augment": dict(perturbation="augment"),
    "augment, no jitter": dict(perturbation="augment", jitter=0.0),      # the photometric jitter's share
    "augment, 3 copies (batch 86)": dict(perturbation="augment", repeats=3, batch_size=86),   # IIC's repeats, at equal pairs
    "deform, smoothed (sigma 3 px)": dict(perturbation="deform", smooth=3.0),
    "deform, smoothed, 3x the steps": dict(perturbation="deform", smooth=3.0, steps=2400),   # the schedule's share
    "deform, smoothed, batch 512": dict(perturbation="deform", smooth=3.0, batch_size=512),   # the batch's share
    "deform, smoothed, 10 heads": dict(perturbation="deform", smooth=3.0, heads=10),   # more sub-heads to choose from
    "deform, smoothed, 20 heads": dict(perturbation="deform", smooth=3.0, heads=20),
    "deform, smoothed, 10 heads, 3x the steps": dict(perturbation="deform", smooth=3.0, heads=10, steps=2400),
    "deform, smoothed, 10 heads, rerun": dict(perturbation="deform", smooth=3.0, heads=10),   # the same runs on another CPU, with the vote
    "deform, smoothed, 10 heads, 3x the steps, rerun": dict(perturbation="deform", smooth=3.0, heads=10, steps=2400),   # likewise
    "deform, smoothed, 10 heads, jitter g(x) only": dict(perturbation="deform", smooth=3.0, heads=10, jitter_views="perturbed"),   # IIC's one-view jitter
    "deform, smoothed, 10 heads, entropy weight 1.5": dict(perturbation="deform", smooth=3.0, heads=10, entropy_weight=1.5),   # IIC's code's lamb:
    "deform, smoothed, 10 heads, entropy weight 2": dict(perturbation="deform", smooth=3.0, heads=10, entropy_weight=2.0),     # -I - (lamb - 1)(H + H')
    "deform, smoothed, 10 heads, paired": dict(perturbation="deform", smooth=3.0, heads=10),   # lambda 1 and 2 again, side by side
    "deform, smoothed, 10 heads, entropy weight 2, paired": dict(perturbation="deform", smooth=3.0, heads=10, entropy_weight=2.0),   # on one CPU
    "deform, unsmoothed": dict(perturbation="deform", smooth=0.0),
    "augment + deform (smoothed)": dict(perturbation="augment+deform", smooth=3.0),   # the combination of the two
    "wasserstein": dict(perturbation="wasserstein"),
    "augment, at wasserstein's steps": dict(perturbation="augment"),   # the baseline at the slow model's budget
}
SLUG = {"augment": "augment", "augment, no jitter": "augment_nojitter", "augment, 3 copies (batch 86)": "augment_x3", "deform, smoothed (sigma 3 px)": "deform_smooth", "deform, unsmoothed": "deform_raw",
        "deform, smoothed, 3x the steps": "deform_smooth_long", "deform, smoothed, batch 512": "deform_smooth_b512",
        "deform, smoothed, 10 heads": "deform_smooth_h10", "deform, smoothed, 20 heads": "deform_smooth_h20",
        "deform, smoothed, 10 heads, 3x the steps": "deform_smooth_h10_long", "deform, smoothed, 10 heads, 3x the steps, rerun": "deform_smooth_h10_long_rerun",
        "deform, smoothed, 10 heads, jitter g(x) only": "deform_smooth_h10_jit1", "deform, smoothed, 10 heads, rerun": "deform_smooth_h10_rerun",
        "deform, smoothed, 10 heads, entropy weight 1.5": "deform_smooth_h10_ew15", "deform, smoothed, 10 heads, entropy weight 2": "deform_smooth_h10_ew2",
        "deform, smoothed, 10 heads, paired": "deform_smooth_h10_pair", "deform, smoothed, 10 heads, entropy weight 2, paired": "deform_smooth_h10_ew2_pair",
        "augment + deform (smoothed)": "augment_deform",
        "wasserstein": "wasserstein", "augment, at wasserstein's steps": "augment_short"}
SHORT = ("wasserstein", "augment, at wasserstein's steps")   # models trained for --wasserstein-steps


def interval(v):
    "mean, and the 95 % Student-t interval (nan for one value)."
    v = np.asarray(v, dtype=float)
    m = v.mean()
    if len(v) < 2: return m, math.nan, math.nan
    h = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return m, m - h, m + h


def run_one(model, seed, a, test):
    opts = dict(MODELS[model])
    cfg = Config(method="iic", dataset="fashion_mnist", batch_size=opts.pop("batch_size", a.batch_size), lr=a.lr, epochs=100,
                 max_steps=opts.pop("steps", a.steps_for.get(model, a.steps)), seed=seed, out_dir=a.runs, name=f"{SLUG[model]}_s{seed}",
                 log_every=10, options=opts)
    r = fit(cfg, progress=False)
    train_s = float(pd.read_csv(r["run_dir"] / "metrics.csv")["time"].iloc[-1])   # also right when a finished run is reused
    rep = r["method"].evaluate(r["models"], None, test, r["cfg"])
    km = rep["kmeans_pixels"]
    row = dict(model=model, seed=seed, steps=r["steps"], accuracy=rep["accuracy"], nmi=rep["nmi"], ari=rep["ari"],
               best_head=rep["best_head"], head_accuracy_min=min(h["accuracy"] for h in rep["heads"]),
               head_accuracy_max=max(h["accuracy"] for h in rep["heads"]), consensus_head=rep["consensus"]["head"],
               **{f"{r}_{k}": rep[r][k] for r in ("consensus", "vote") for k in ("accuracy", "nmi", "ari")}, train_seconds=train_s,
               kmeans_accuracy=km["accuracy"], kmeans_nmi=km["nmi"], kmeans_ari=km["ari"])
    (r["run_dir"] / "clustering.json").write_text(json.dumps(rep, indent=1) + "\n")
    return row, r, rep


def perturbation_figure(test, seed):
    torch.manual_seed(seed)
    x = to_float(test.images[:8])
    views = {"original": x}
    for name, o in MODELS.items():
        if name in SHORT[1:] or name.startswith("augment, ") or "heads" in o or {"steps", "batch_size"} & set(o): continue   # variants look like their model
        views[name] = CL.perturb(x, o["perturbation"], **CL.perturbation_params(CL.IICOptions(**o).__dict__))
    views["jitter (applied to both views)"] = CL.jitter(x, CL.IICOptions().jitter)
    fig, ax = plt.subplots(len(views), 8, figsize=(8, 1.15 * len(views)))
    for r, (k, v) in enumerate(views.items()):
        for c in range(8):
            ax[r, c].imshow(v[c, 0], cmap="gray_r", vmin=-1, vmax=1); ax[r, c].axis("off")
        ax[r, 0].set_title(k, fontsize=8, loc="left")
    fig.tight_layout()
    return fig


@torch.no_grad()
def joint_on_test(run, test):
    "P(z, z') of the run's selected head over test pairs (x, g(x)), jittered as in training (the slow model: 1000 images)."
    enc, o = run["encoder"].eval(), run["cfg"].options
    n = 1000 if o["perturbation"] == "wasserstein" else len(test)
    clf = run["method"].classifier(run["cfg"], tuple(test.images.shape[1:]), "cpu") if o["perturbation"] == "wasserstein" else None
    torch.manual_seed(0)
    P = 0
    for i in range(0, n, 1000):
        x = to_float(test.images[i:i + 1000])
        xp = CL.perturb(x, o["perturbation"], classifier=clf, **CL.perturbation_params(o))
        both = o.get("jitter_views", "both") == "both"
        z, zp = enc(CL.jitter(x, o["jitter"]) if both else x)["y"], enc(CL.jitter(xp, o["jitter"]))["y"]
        P = P + CL.joint_matrix(z.double(), zp.double()) * len(x)
    return (P / n).numpy(), n


def matched_order(counts):
    "Clusters in the order of the class the Hungarian matching gives them (counts: [cluster, class])."
    from scipy.optimize import linear_sum_assignment
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return rows[np.argsort(cols)]


def confusion_figure(run, rep, test, model):
    counts = np.array(rep["confusion"])                        # [cluster, class]
    order = matched_order(counts)
    P, n = joint_on_test(run, test)
    P = P[np.ix_(order, order)]
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.4))
    im = ax[0].imshow(counts[order], cmap="Blues")
    ax[0].set(xticks=range(10), yticks=range(10), xticklabels=test.classes, yticklabels=[f"cluster {c}" for c in order],
              title=f"{model}, seed {run['cfg'].seed}:\ntest images per (cluster, class)")
    ax[0].tick_params(axis="x", labelrotation=60, labelsize=7); ax[0].tick_params(axis="y", labelsize=7)
    for i in range(10):
        for j in range(10): ax[0].text(j, i, counts[order][i, j], ha="center", va="center", fontsize=6)
    im = ax[1].imshow(P, cmap="viridis"); fig.colorbar(im, ax=ax[1], fraction=0.046)
    ax[1].set(title=f"joint P(z, z') on {n} test pairs (x, g(x));\nI = {CL.discrete_mi(torch.tensor(P)).item():.3f} nats",
              xticks=range(10), yticks=range(10), xticklabels=order, yticklabels=order, xlabel="cluster of g(x)", ylabel="cluster of x")
    fig.tight_layout()
    return fig


def load_run(run_dir):
    "A finished run rebuilt from its checkpoint, shaped like `fit`'s result (cfg, method, models, encoder, run_dir)."
    from dataclasses import fields
    from wdim_nb.learner import check, read_checkpoint
    from wdim_nb.methods import get_method
    ck = read_checkpoint(run_dir / "checkpoint.pt")
    c = {k: v for k, v in ck["config"].items() if k in {f.name for f in fields(Config)}}
    opts = dict(c["options"])
    if "max_steps" in opts: opts["adef_max_steps"] = opts.pop("max_steps")   # the option's earlier name
    cfg = check(Config(**(c | dict(options=opts))), data=False)
    method = get_method("iic")
    models = method.build(cfg, (1, 28, 28))
    for k, m in models.items(): m.load_state_dict(ck["models"][k])
    method.load_state_dict(ck["method"])
    return dict(cfg=cfg, method=method, models=models, encoder=models["encoder"], run_dir=run_dir)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(SLUG.values()), help=f"of {list(SLUG.values())}")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--wasserstein-seeds", nargs="+", type=int, default=None, help="seeds for the (slow) wasserstein model")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--wasserstein-steps", type=int, default=None, help="steps of the wasserstein model (default: --steps)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--runs", default="runs/iic_table")
    p.add_argument("--out", default=None, help="figures folder (default: figures/)")
    p.add_argument("--merge", nargs="+", default=None, metavar="DIR",
                   help="instead of training: join the iic_runs.csv of earlier invocations (run in parallel) found in DIRs")
    a = p.parse_args(argv)
    names = {v: k for k, v in SLUG.items()}
    bad = [m for m in a.models if m not in names]
    if bad: p.error(f"unknown model(s) {bad}; choose from {list(names)}")
    a.steps_for = {m: a.wasserstein_steps for m in SHORT} if a.wasserstein_steps else {}
    torch.set_num_threads(1)
    test = get_dataset("fashion_mnist", "test")
    rows, first = [], {}
    if a.merge:
        meta = {d: json.loads((Path(d) / "iic_runs.json").read_text()) for d in a.merge}   # each part's params and provenance
        parts = [(Path(d), m["params"] | dict(commit=m["commit"], dirty=m["dirty"], hardware=m.get("hardware"))) for d, m in meta.items()]
        df = pd.concat([pd.read_csv(d / "iic_runs.csv") for d, _ in parts], ignore_index=True)
        df = df.drop_duplicates(["model", "seed"], keep="last")   # a run redone in a later part replaces the earlier one
        merged_from = {}   # an earlier merge (e.g. figures/) joins as the parts it was merged from
        for d, q in parts: merged_from |= q["merged_from"] if "merged_from" in q else {str(d): q}
        slow = [q for q in merged_from.values() if {SLUG[m] for m in SHORT} & set(q["models"])]   # the parts that ran the short models
        params = dict(merged_from=merged_from, threads=1, device="cpu",
                      **{k: parts[0][1][k] for k in ("steps", "batch_size", "lr", "seeds", "dataset", "train_images", "test_images")},
                      wasserstein_steps=max((q["wasserstein_steps"] for q in slow), default=None),
                      wasserstein_seeds=sorted({s for q in slow for s in q["wasserstein_seeds"]}))
        save_table(df, "iic_runs", params, folder=a.out)
    else:
        params = dict(steps=a.steps, wasserstein_steps=a.wasserstein_steps or a.steps, batch_size=a.batch_size, lr=a.lr,
                      seeds=a.seeds, wasserstein_seeds=a.wasserstein_seeds or a.seeds, threads=1, device="cpu",
                      dataset="fashion_mnist", train_images=60000, test_images=len(test), models={m: MODELS[names[m]] for m in a.models},
                      options_defaults=CL.IICOptions().__dict__, head_selection="lowest moving-average training loss",
                      consensus_selection="sub-head with the highest mean NMI to the other sub-heads, on the test images",
                      vote="head_vote: every sub-head renamed to match the consensus head, then the vote (3 rounds), averaged")
        for m in a.models:
            seeds = (a.wasserstein_seeds or a.seeds) if names[m] in SHORT else a.seeds
            for s in seeds:
                row, run, rep = run_one(names[m], s, a, test)
                rows.append(row); print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
                if s == seeds[0]: first[names[m]] = (run, rep)
                save_table(pd.DataFrame(rows), "iic_runs", params, folder=a.out)
        df = pd.DataFrame(rows)
    save_figure(perturbation_figure(test, 0), "iic_perturbations", dict(models=MODELS, seed=0), folder=a.out)
    out = []
    for m, g in df.groupby("model", sort=False):
        r = dict(model=m, seeds=len(g), steps=int(g.steps.iloc[0]))
        for k in ("accuracy", "nmi", "ari"):
            r[f"{k}_mean"], r[f"{k}_lo"], r[f"{k}_hi"] = interval(g[k])
        for rule in ("consensus", "vote"):
            c = g.get(f"{rule}_accuracy", pd.Series(dtype=float)).dropna()   # runs evaluated before the rule existed: none
            r[f"{rule}_seeds"] = len(c)
            r[f"{rule}_accuracy_mean"], r[f"{rule}_accuracy_lo"], r[f"{rule}_accuracy_hi"] = interval(c) if len(c) else (math.nan,) * 3
        r["train_seconds_mean"] = g.train_seconds.mean()
        out.append(r)
    table = pd.DataFrame(out)
    save_table(table, "iic_table", params, folder=a.out)
    print(table.round(3).to_string(index=False))
    long = ~table.model.isin(SHORT)
    best = table[long].sort_values("accuracy_mean", ascending=False).model.iloc[0] if long.any() else table.model.iloc[0]
    if best not in first:   # merged: rebuild the best model's first seed from its checkpoint
        seed = int(df[df.model == best].seed.min())
        run_dir = Path(a.runs) / f"{SLUG[best]}_s{seed}"
        if not (run_dir / "checkpoint.pt").exists():
            print(f"{run_dir} is not here: iic_confusion is not redrawn (pass --runs with the folder that holds it)")
            return
        run = load_run(run_dir)
        first[best] = (run, run["method"].evaluate(run["models"], None, test, run["cfg"]))
    run, rep = first[best]
    save_figure(confusion_figure(run, rep, test, best), "iic_confusion", dict(params, model=best, seed=int(run["cfg"].seed)), folder=a.out)


if __name__ == "__main__":
    main()
