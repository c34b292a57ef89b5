"""IIC during training: test accuracy / NMI and the joint matrix P every few hundred steps, with and without jitter.

Trains `iic` (augmentation perturbation) on the 60,000 Fashion-MNIST training images, stopping every `--every` steps
to score the selected sub-head on the 10,000 test images (Hungarian accuracy, NMI, ARI) and to compute P(z, z') over
test pairs (x, g(x)); the run then resumes from its checkpoint. Once with the default brightness/contrast jitter of
both views and once without, same seed. Writes (provenance .json beside each):
  figures/iic_training.csv   one row per (model, step)
  figures/iic_training.png   P at four steps of the jittered run; accuracy against steps for both runs

    python scripts/iic_curve.py                      # 1,600 steps, a stop every 200, 2 threads
    python scripts/iic_curve.py --threads 1          # the committed figure (run beside other jobs)
    python scripts/iic_curve.py --steps 40 --every 20 --runs /tmp/c --out /tmp/c   # a smoke run
"""
import argparse

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from iic_table import joint_on_test, matched_order   # scripts/ is on the path when this file runs
from wdim_nb import clustering as CL
from wdim_nb.core import save_figure, save_table
from wdim_nb.data import get_dataset
from wdim_nb.learner import Config, fit

MODELS = {"augment": dict(perturbation="augment"), "augment, no jitter": dict(perturbation="augment", jitter=0.0)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1600)
    p.add_argument("--every", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", default="runs/iic_curve")
    p.add_argument("--out", default=None, help="figures folder (default: figures/)")
    a = p.parse_args(argv)
    if a.every < 1 or a.steps < a.every: p.error(f"need 1 <= --every <= --steps, got every={a.every}, steps={a.steps}")
    torch.set_num_threads(a.threads)
    test = get_dataset("fashion_mnist", "test")
    params = dict(steps=a.steps, every=a.every, seed=a.seed, batch_size=a.batch_size, lr=a.lr, threads=a.threads, device="cpu",
                  dataset="fashion_mnist", train_images=60000, test_images=len(test), models=MODELS,
                  options_defaults=CL.IICOptions().__dict__)
    rows, Ps = [], {}
    for model, opts in MODELS.items():
        for k in range(a.every, a.steps + 1, a.every):
            cfg = Config(method="iic", dataset="fashion_mnist", batch_size=a.batch_size, lr=a.lr, epochs=100, max_steps=k,
                         seed=a.seed, out_dir=a.runs, name=f"{model.replace(', ', '_').replace(' ', '_')}_s{a.seed}",
                         log_every=10, options=opts)
            r = fit(cfg, progress=False)   # resumes from the previous checkpoint
            rep = CL.clustering_report(r["encoder"], test, seed=a.seed, kmeans=False)
            P, n = joint_on_test(r, test)
            order = matched_order(np.array(rep["confusion"]))
            Ps[model, k] = P[np.ix_(order, order)]
            rows.append(dict(model=model, step=k, accuracy=rep["accuracy"], nmi=rep["nmi"], ari=rep["ari"], best_head=rep["best_head"],
                             head_accuracy_max=max(h["accuracy"] for h in rep["heads"]), test_mi=CL.discrete_mi(torch.tensor(P)).item(),
                             train_seconds=float(pd.read_csv(r["run_dir"] / "metrics.csv")["time"].iloc[-1])))
            print({k2: (round(v, 4) if isinstance(v, float) else v) for k2, v in rows[-1].items()}, flush=True)
            save_table(pd.DataFrame(rows), "iic_training", params, folder=a.out)
    df = pd.DataFrame(rows)
    km = CL.kmeans_pixels(test, 10, seed=a.seed)["accuracy"]
    first = list(MODELS)[0]
    steps = sorted(df[df.model == first].step)
    shown = [steps[round(i * (len(steps) - 1) / 3)] for i in range(4)] if len(steps) >= 4 else steps
    fig = plt.figure(figsize=(12, 6.2))
    for i, k in enumerate(shown):
        ax = fig.add_subplot(2, len(shown), i + 1)
        ax.imshow(Ps[first, k], cmap="viridis"); ax.set(xticks=[], yticks=[])
        ax.set_title(f"{first}, step {k}: P(z, z')\nI = {df[(df.model == first) & (df.step == k)].test_mi.item():.2f} nats "
                     f"(max log 10 = {np.log(10):.2f})", fontsize=8)
    ax = fig.add_subplot(2, 1, 2)
    for m, g in df.groupby("model", sort=False):
        ax.plot(g.step, g.accuracy, "o-", label=f"{m}: selected head")
    ax.axhline(km, color="gray", ls="--", label=f"k-means on raw pixels ({km:.3f})")
    ax.set(xlabel="training step (batch 256)", ylabel="test clustering accuracy", title="IIC on Fashion-MNIST, seed "
           f"{a.seed}: clusters matched to classes (Hungarian); P ordered by the matched class")
    ax.legend(fontsize=8); ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, "iic_training", params, folder=a.out)
    print(df.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
