"""WDIM's stability claim (He et al. 2023, Sec. 5.2, Fig. 4), measured: DIM with the adversarial prior against WDIM with
the Sinkhorn prior, the same encoder, critics, bound and weights, at several batch sizes and seeds.

    OMP_NUM_THREADS=1 python scripts/wdim_stability.py --steps 1000 --seeds 3 --batch-sizes 16 32 64 128

WDIM reports that DIM's loss "always appears as nan" below batch 64 and fluctuates where WDIM's decreases smoothly.
Both methods here are DIM(L+G)+prior with WDIM's weights (alpha 0.5, beta 1, gamma 0.1), JSD, the concat critics and
no augmentation (WDIM Sec. 5.1), on Fashion-MNIST; only the prior term differs (`dim_lg`: DIM Eq. 7 written in
softplus form with a trained discriminator; `wdim_lgpc`: the Sinkhorn distance). Each run stops at its first
non-finite loss or gradient (the learner's `nonfinite="stop"`). Writes figures/wdim_stability.{csv,json,png}: per
run the first non-finite step (empty when none), the standard deviation of the MI part of the loss (global + local)
and of the whole loss over the second half of training, and the loss curves of Fig. 4.
"""
import argparse, tempfile, time

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch

from wdim_nb.core import save_figure, save_table
from wdim_nb.learner import NonFiniteError, check, fit, flat_config

METHODS = {"DIM (adversarial prior)": "dim_lg", "WDIM (Sinkhorn prior)": "wdim_lgpc"}
SHARED = dict(alpha=0.5, beta=1.0, gamma=0.1, mi_bound="jsd", local_critic="concat", augment="none", lr=1e-3)   # WDIM Sec. 5.1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--dataset", default="fashion_mnist")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows, curves, cfgs = [], [], {}
    with tempfile.TemporaryDirectory() as d:
        for label, method in METHODS.items():
            for B in a.batch_sizes:
                for seed in range(a.seeds):
                    cfg = check(flat_config(method=method, dataset=a.dataset, batch_size=B, seed=seed, max_steps=a.steps,
                                            out_dir=d, name=f"{method}_b{B}_s{seed}", **SHARED))
                    cfgs[method] = {k: v for k, v in vars(cfg).items() if k not in ("out_dir", "data_dir", "name", "seed", "batch_size")}
                    t, bad = time.time(), None
                    try: fit(cfg, progress=False)
                    except NonFiniteError as e: bad = e.step
                    m = pd.read_csv(f"{d}/{cfg.name}/metrics.csv")
                    mi = m[[c for c in ("global", "local") if c in m]].sum(axis=1)
                    tail = m.step > m.step.max() / 2
                    rows.append(dict(method=label, batch_size=B, seed=seed, steps_run=int(m.step.max()),
                                     first_nonfinite_step=bad, mi_loss_std=float(mi[tail].std()),
                                     total_loss_std=float(m.total[tail].std()), final_mi_loss=float(mi[tail].mean()),
                                     seconds=round(time.time() - t, 1)))
                    print(rows[-1], flush=True)
                    curves.append(m[["step", "total"]].assign(mi=mi, method=label, batch_size=B, seed=seed))
    params = dict(dataset=a.dataset, steps=a.steps, seeds=a.seeds, batch_sizes=a.batch_sizes, threads=1, configs=cfgs)
    save_table(pd.DataFrame(rows), "wdim_stability", params)
    cv = pd.concat(curves)
    fig, ax = plt.subplots(1, len(a.batch_sizes), figsize=(4 * len(a.batch_sizes), 3.4), squeeze=False, sharey=True)
    for j, B in enumerate(a.batch_sizes):
        for (label, seed), g in cv[(cv.batch_size == B)].groupby(["method", "seed"]):
            c = "C0" if label.startswith("DIM") else "C1"
            ax[0, j].plot(g.step, g.mi.rolling(20, min_periods=1).mean(), color=c, lw=0.7, alpha=0.8,
                          label=label if seed == 0 else None)
        ax[0, j].set(title=f"batch {B}", xlabel="step"); ax[0, j].legend(fontsize=7)
    ax[0, 0].set_ylabel("MI part of the loss, -(0.5 I_G + I_L)")
    fig.suptitle(f"WDIM Fig. 4 on {a.dataset}: DIM vs WDIM, {a.seeds} seeds per batch size (moving average of 20 steps)")
    fig.tight_layout()
    save_figure(fig, "wdim_stability", params)
    print(pd.DataFrame(rows).groupby(["method", "batch_size"])[["first_nonfinite_step", "mi_loss_std"]].agg(["count", "mean"]))


if __name__ == "__main__":
    main()
