"""Benchmark: forward+backward time of wdim_nb.sinkhorn vs POT (sinkhorn_log) and GeomLoss (tensorized) on WDIM's prior loss.

Codes x = sigmoid(N(0, 1)) in [0,1]^64 (requires grad) against prior samples y ~ U[0,1]^64, n = m points, squared Euclidean
cost |x - y|^2. Two comparisons per n:
  matched eps:      every method at our default eps (EPS_REL * median cost); GeomLoss at blur = sqrt(eps / 2), since its
                    p=2 cost is |x-y|^2 / 2, and its value doubled;
  matched accuracy: every method at the fastest setting of a small ladder whose value is within 1 % of exact OT
                    (POT's ot.emd2, affordable up to n = 1024; for larger n the setting chosen at the largest affordable n).
Times are medians over --reps runs of (value, grad wrt x); ratios are to ours in the same setting and run.

    .venv/bin/python bench/sinkhorn.py                # n in 64 256 1024 4096, writes figures/sinkhorn_bench.csv
    .venv/bin/python bench/sinkhorn.py --n 64 256 --reps 3 --no-save
"""
import argparse, math, statistics, time, warnings

import ot
import pandas as pd
import torch
from geomloss import SamplesLoss

from wdim_nb.core import save_table
from wdim_nb.sinkhorn import EPS_REL, cost_matrix, sinkhorn


def fwd_bwd(fn, x, y):
    "Wall time (s) of value = fn(x, y); value.backward(); and the value."
    xg = x.detach().clone().requires_grad_(True)
    t = time.perf_counter()
    v = fn(xg, y)
    v.backward()
    return time.perf_counter() - t, v.item()


def interleaved(fns, x, y, reps, budget_s):
    "Median time of each fn, the reps run round-robin so that load changes on the shared CPU hit all methods alike."
    ts, vals = [[] for _ in fns], [None] * len(fns)
    for r in range(reps):
        for i, fn in enumerate(fns):
            if r and sum(ts[i]) > budget_s: continue  # slow ones: fewer repeats
            t, vals[i] = fwd_bwd(fn, x, y)
            ts[i].append(t)
    return [statistics.median(t) for t in ts], vals


def ours(eps, tol):
    return lambda x, y: sinkhorn(x, y, eps, tol=tol, max_iter=2000, warn=False)


def pot(eps, tol):
    def f(x, y):
        n, m = len(x), len(y)
        a, b = torch.full((n,), 1 / n, dtype=x.dtype), torch.full((m,), 1 / m, dtype=x.dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ot.sinkhorn2(a, b, ot.dist(x, y), eps, method="sinkhorn_log", numItermax=2000, stopThr=tol)
    return f


def geomloss(eps, scaling):
    loss = SamplesLoss("sinkhorn", p=2, blur=math.sqrt(eps / 2), scaling=scaling, debias=False, backend="tensorized")
    return lambda x, y: 2 * loss(x, y)


# each method's ladder, cheapest first: (label, eps multiplier of our default eps, builder(eps))
LADDERS = {
    "ours": [(f"eps x{k:g}, tol {t:g}", k, (lambda t: lambda e: ours(e, t))(t)) for k in (4, 2, 1) for t in (1e-2, 1e-3)],
    "pot_sinkhorn_log": [(f"eps x{k:g}, stopThr {t:g}", k, (lambda t: lambda e: pot(e, t))(t)) for k in (4, 2, 1) for t in (1e-2, 1e-3)],
    "geomloss_tensorized": [(f"eps x{k:g}, scaling {s:g}", k, (lambda s: lambda e: geomloss(e, s))(s))
                            for k in (1, 0.5, 0.25, 0.1) for s in (0.5, 0.7, 0.9)],
}
DEFAULTS = {"ours": 5, "pot_sinkhorn_log": 5, "geomloss_tensorized": 0}  # ladder index used at matched eps


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, nargs="+", default=[64, 256, 1024, 4096])
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--exact-max-n", type=int, default=1024, help="largest n for which exact OT (ot.emd2) is computed")
    p.add_argument("--budget", type=float, default=20.0, help="seconds per (method, setting) before repeats stop")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows, chosen = [], {}
    for n in args.n:
        g = torch.Generator().manual_seed(args.seed + n)
        x = torch.sigmoid(torch.randn(n, args.d, generator=g))  # codes E(x) in [0,1]^d
        y = torch.rand(n, args.d, generator=g)  # prior samples U[0,1]^d
        C = cost_matrix(x, y)
        eps0 = EPS_REL * C.flatten().median().item()
        exact = None
        if n <= args.exact_max_n:
            u = torch.full((n,), 1 / n, dtype=torch.float64)
            exact = ot.emd2(u, u, C.double(), numItermax=10_000_000).item()
        def measure(entries):  # entries: [(method, ladder index)] -> rows
            fns = [LADDERS[m][i][2](LADDERS[m][i][1] * eps0) for m, i in entries]
            times, vals = interleaved(fns, x, y, args.reps, args.budget)
            return [dict(n=n, d=args.d, method=m, setting=LADDERS[m][i][0], eps=LADDERS[m][i][1] * eps0, time_ms=1e3 * t,
                         value=v, exact=exact, rel_err=None if exact is None else abs(v - exact) / exact)
                    for (m, i), t, v in zip(entries, times, vals)]
        if exact is not None:  # every ladder entry, once for matched eps and the accuracy search
            entries = [(m, i) for m in LADDERS for i in range(len(LADDERS[m]))]
            res = dict(zip(entries, measure(entries)))
            for m in LADDERS:
                cands = [res[(m, i)] for i in range(len(LADDERS[m]))]
                ok = [r for r in cands if r["rel_err"] <= 0.01]
                best = min(ok, key=lambda r: r["time_ms"]) if ok else min(cands, key=lambda r: r["rel_err"])
                chosen[m] = cands.index(best)
        else:  # too large for exact OT: the defaults and the settings chosen at the largest exact n
            entries = list(dict.fromkeys([(m, DEFAULTS[m]) for m in LADDERS] + [(m, chosen.get(m, DEFAULTS[m])) for m in LADDERS]))
            res = dict(zip(entries, measure(entries)))
        block = [dict(res[(m, DEFAULTS[m])], comparison="matched eps") for m in LADDERS]
        block += [dict(res[(m, chosen.get(m, DEFAULTS[m]))], comparison="matched accuracy (<= 1 %)") for m in LADDERS]
        rows += block
        for r in block:
            print(f"n={n:5d} {r['comparison']:26s} {r['method']:20s} {r['setting']:24s} {r['time_ms']:9.1f} ms  "
                  f"err={'n/a' if r['rel_err'] is None else format(r['rel_err'], '.3%')}", flush=True)
    df = pd.DataFrame(rows)
    base = df[df.method == "ours"].set_index(["n", "comparison"]).time_ms
    df["time_vs_ours"] = [t / base[(n, c)] for n, c, t in zip(df.n, df.comparison, df.time_ms)]
    fastest_other = df[df.method != "ours"].groupby(["n", "comparison"]).time_ms.min()
    df["speedup_of_ours_vs_fastest_other"] = [fastest_other[(n, c)] / base[(n, c)] for n, c in zip(df.n, df.comparison)]
    print(df[["n", "comparison", "method", "setting", "time_ms", "rel_err", "time_vs_ours"]].to_string(index=False))
    if not args.no_save:
        path = save_table(df, "sinkhorn_bench", dict(vars(args), eps_rel=EPS_REL, cost="sqeuclidean",
                                                     x="sigmoid(N(0,1)) codes", y="U[0,1]^d prior",
                                                     device="cpu", timing="median wall time of forward+backward"))
        print("wrote", path)


if __name__ == "__main__":
    main()
