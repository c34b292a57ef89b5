"""Benchmark: throughput (images/s) of the perturbation models of `wdim_nb.clustering` on Fashion-MNIST test images.

Each model perturbs the same batch of --batch float images [B, 1, 28, 28] on the CPU with one thread; the time is the
median of --reps calls, and `speed_vs_augment` is the throughput as a ratio to the torchvision augmentation measured in
the same run. `w2_px` is the mean W2 distance (pixels, `w2_images`, pool 2) of each model's output from its input, so the
models can be compared by how far they move the images, and `w2_*` rows time the W2 computation itself at pool 1
(784 grid points) and pool 2 (196 points).

    python bench/perturbations.py                       # figures/perturbation_bench.csv (+ .json provenance)
    python bench/perturbations.py --batch 32 --reps 1 --no-save   # a smoke run
"""
import argparse, statistics, time

import pandas as pd
import torch

from wdim_nb import clustering as CL
from wdim_nb.core import save_table
from wdim_nb.data import get_dataset, to_float

MODELS = {  # name -> (perturb kind, keyword arguments)
    "augment": ("augment", {}),
    "deform, smoothed (sigma 3 px)": ("deform", dict(sigma=3.0)),
    "deform, unsmoothed": ("deform", dict(sigma=0.0)),
    "wasserstein (eta 0.5 px)": ("wasserstein", dict(eta=0.5)),
    "wasserstein (eta 0.25 px)": ("wasserstein", dict(eta=0.25)),
}


def timed(fn, reps):
    ts, out = [], None
    for _ in range(reps):
        t = time.perf_counter(); out = fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-save", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    x = to_float(get_dataset("fashion_mnist", "test", n=a.batch).images)
    clf = CL.random_classifier((1, 28, 28), 10, seed=a.seed)
    rows = []
    for name, (kind, kw) in MODELS.items():
        torch.manual_seed(a.seed)
        extra = dict(classifier=clf) if kind == "wasserstein" else {}
        t, out = timed(lambda: CL.perturb(x, kind, **extra, **kw), a.reps)
        w = CL.w2_images(out, x)
        rows.append(dict(model=name, images_per_s=a.batch / t, w2_px=w.mean().item(), w2_px_std=w.std().item()))
        print(rows[-1], flush=True)
    y = CL.random_deformation(x, amplitude=1.0)
    for pool in (1, 2):
        n = min(a.batch, 32) if pool == 1 else a.batch   # pool 1 holds B x 784 x 784 cost matrices: fewer images
        t, w = timed(lambda: CL.w2_images(x[:n], y[:n], pool=pool), a.reps)
        rows.append(dict(model=f"w2_images, pool {pool} (timing only)", images_per_s=n / t, w2_px=w.mean().item(),
                         w2_px_std=w.std().item()))
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df["speed_vs_augment"] = df.images_per_s / df.loc[df.model == "augment", "images_per_s"].item()
    print(df.round(3).to_string(index=False))
    if not a.no_save:
        path = save_table(df, "perturbation_bench", dict(vars(a), threads=1, device="cpu", models={k: v for k, v in MODELS.items()},
                                                         w2=dict(eps=2.0, floor=1e-3, tol=1e-2)))
        print("wrote", path)


if __name__ == "__main__":
    main()
