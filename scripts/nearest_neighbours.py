"""DIM App. A.3 / Fig. 7: nearest neighbours in code space, for trained runs beside raw pixels.

    python scripts/nearest_neighbours.py runs/dim_g_... runs/dim_l_... --labels "DIM(G)" "DIM(L)"

As in DIM App. A.3: one query drawn at random from each class of the test set, the test set ordered by L1 distance
to it in the representation (the code y; raw pixels for the baseline), the four nearest shown. DIM reads the
neighbours by eye; we also count, over `--queries` random test images, how many of their four nearest neighbours
share the query's class. Writes figures/nearest_neighbours.{png,csv,json}; the JSON records each run's settings.
"""
import argparse

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch

from wdim_nb.core import save_figure, save_table
from wdim_nb.data import get_dataset, view
from wdim_nb.evaluate import extract_features
from wdim_nb.learner import load_run


def neighbours(z: torch.Tensor, queries: torch.Tensor, k: int) -> torch.Tensor:
    "Indices [Q, k] of the k nearest rows of z in L1 distance to each query row of z (the query itself excluded)."
    d = torch.cdist(z[queries], z, p=1)
    d[torch.arange(len(queries)), queries] = float("inf")
    return d.topk(k, largest=False).indices


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders (each with checkpoint.pt)")
    ap.add_argument("--labels", nargs="*", help="one label per run (default: the method's name)")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--queries", type=int, default=2000, help="random test images for the same-class count")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.labels and len(a.labels) != len(a.runs): ap.error(f"{len(a.runs)} runs but {len(a.labels)} labels")
    runs = [load_run(r) for r in a.runs]
    datasets = {r["cfg"].dataset for r in runs}
    if len(datasets) != 1: ap.error(f"the runs were trained on different datasets: {sorted(datasets)}")
    name = datasets.pop()
    test = get_dataset(name, "test", runs[0]["cfg"].data_dir)
    codes = {"raw pixels": test.images.flatten(1).float() / 255}
    for r, label in zip(runs, a.labels or [r["cfg"].method for r in runs]):
        codes[label] = extract_features(r["encoder"], test, taps=("y",), augment=view(name)["eval_augment"])["y"]
    g = torch.Generator().manual_seed(a.seed)
    labels = test.labels.cpu()
    shown = torch.stack([torch.nonzero(labels == c)[:, 0][torch.randint((labels == c).sum(), (1,), generator=g)][0]
                         for c in labels.unique()])
    many = torch.randperm(len(test), generator=g)[:a.queries]
    rows = []
    for label, z in codes.items():
        nn_ = neighbours(z, many, a.k)
        rows.append(dict(representation=label, same_class=float((labels[nn_] == labels[many, None]).float().mean()),
                         queries=len(many), k=a.k))
        print(rows[-1])
    params = dict(dataset=name, k=a.k, queries=a.queries, seed=a.seed, distance="L1", code="y (before any squashing)",
                  runs={label: dict(run=str(r["run_dir"].name), steps=r["steps"], config={k: v for k, v in vars(r["cfg"]).items()
                        if k not in ("out_dir", "data_dir", "name")}) for label, r in zip(list(codes)[1:], runs)})
    save_table(pd.DataFrame(rows), "nearest_neighbours", params)
    img = test.images.cpu()
    fig, ax = plt.subplots(len(shown), len(codes) * (a.k + 1), figsize=(0.8 * len(codes) * (a.k + 1), 0.8 * len(shown)))
    for j, (label, z) in enumerate(codes.items()):
        nn_ = neighbours(z, shown, a.k)
        for i, q in enumerate(shown):
            for c, idx in enumerate([q, *nn_[i]]):
                x = ax[i, j * (a.k + 1) + c]
                x.imshow(img[idx].permute(1, 2, 0).squeeze(-1), cmap="gray"); x.set_xticks([]); x.set_yticks([])
                if c and labels[idx] != labels[q]: [s.set(color="red", linewidth=2) for s in x.spines.values()]
        ax[0, j * (a.k + 1)].set_title(f"{label}: query, {a.k} nearest", fontsize=8, loc="left")
    fig.suptitle(f"DIM App. A.3 on {name}: L1 nearest neighbours in the code (red frame: another class)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, "nearest_neighbours", params)


if __name__ == "__main__":
    main()
