"""What launches cost a GPU Sinkhorn: a fixed number of log-domain sweeps, captured once as a CUDA graph and replayed,
against the same sweeps run eagerly, our `sinkhorn` and POT's `sinkhorn_log`, on bench/sinkhorn.py's data.

    python bench/gpu/sinkhorn_graph.py --out DIR/sinkhorn_graph_cuda.csv          # on a GPU
    python bench/gpu/sinkhorn_graph.py --dry --out DIR/sinkhorn_graph_cpu.csv     # CPU, tiny sizes, no graph

A graph replays its kernels without Python or launch overhead, but it cannot stop on a convergence test (that needs
the host), so the number of sweeps is fixed in advance: each row gives the value's error against exact OT (`ot.emd2`)
for that number, and the time of value and gradient (the envelope gradient, as `sinkhorn` gives it).
"""
import argparse, csv, json, math, statistics, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sinkhorn import pot  # noqa: E402  (bench/sinkhorn.py: POT's column, the same call)
from wdim_nb.core import provenance  # noqa: E402
from wdim_nb.sinkhorn import EPS_REL, cost_matrix, sinkhorn  # noqa: E402


def sweeps(x, y, eps, iters):
    "<P, C> and its envelope gradient in x after `iters` log-domain Sinkhorn sweeps from zero potentials; no host sync."
    n, m = x.shape[0], y.shape[0]
    C = cost_matrix(x, y)
    la, lb = -math.log(n), -math.log(m)
    g = torch.zeros(m, device=x.device, dtype=x.dtype)
    for _ in range(iters):
        f = -eps * torch.logsumexp((g - C) / eps + lb, 1)
        g = -eps * torch.logsumexp((f[:, None] - C) / eps + la, 0)
    P = torch.exp((f[:, None] + g - C) / eps + (la + lb))
    return (P * C).sum(), 2 * (P.sum(1, keepdim=True) * x - P @ y)


def graphed(x, y, eps, iters):
    "A function of x running `sweeps` as one captured CUDA graph (inputs copied into static buffers)."
    xs = x.clone()
    side = torch.cuda.Stream(); side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2): sweeps(xs, y, eps, iters)   # warm-up on a side stream, as capture requires
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph): out = sweeps(xs, y, eps, iters)
    def call(xn):
        xs.copy_(xn); graph.replay(); return out
    return call


def timed(fn, x, sync, reps, min_s=0.02):
    "Median seconds per call over `reps` samples, each a batch of calls lasting at least `min_s`."
    fn(x); sync(); t = time.perf_counter(); fn(x); sync(); one = time.perf_counter() - t
    k, ts = max(1, math.ceil(min_s / max(one, 1e-6))), []
    for _ in range(reps):
        sync(); t = time.perf_counter()
        for _ in range(k): fn(x)
        sync(); ts.append((time.perf_counter() - t) / k)
    return statistics.median(ts)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[256, 1024, 4096])
    p.add_argument("--iters", type=int, nargs="+", default=[1, 3, 10, 30])
    p.add_argument("--eps-mult", type=float, nargs="+", default=[1.0, 2.0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--device", default="cuda", help="a CUDA device replays graphs; elsewhere only the eager rows run")
    p.add_argument("--dry", action="store_true", help="CPU, tiny sizes, no graph: the code still runs")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    import ot
    dev = torch.device("cpu" if a.dry else a.device)
    if a.dry: a.n, a.iters, a.eps_mult, a.reps = [16], [1, 3], [2.0], 1
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    rows = []
    for n in a.n:
        g = torch.Generator().manual_seed(n)   # bench/sinkhorn.py's data: seed + n with its default seed 0
        x = torch.sigmoid(torch.randn(n, 64, generator=g)).to(dev)
        y = torch.rand(n, 64, generator=g).to(dev)
        C = cost_matrix(x, y)
        eps0 = EPS_REL * C.flatten().median().item()
        u = torch.full((n,), 1 / n, dtype=torch.float64)
        exact = ot.emd2(u, u, C.double().cpu(), numItermax=100_000_000).item()
        def add(variant, k, iters, fn, value):
            rows.append(dict(n=n, variant=variant, eps_mult=k, iters=iters, time_ms=1e3 * timed(fn, x, sync, a.reps),
                             value=value, rel_err=abs(value - exact) / exact, device=str(dev),
                             hardware=torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"))
            print(rows[-1], flush=True)
        for k in a.eps_mult:
            e = k * eps0
            for it in a.iters:
                add("sweeps, eager", k, it, lambda xn: sweeps(xn, y, e, it), sweeps(x, y, e, it)[0].item())
                if dev.type == "cuda":
                    call = graphed(x, y, e, it)
                    add("sweeps, CUDA graph", k, it, call, call(x)[0].item())
            def ours(xn, e=e):
                v = sinkhorn(xn.detach().requires_grad_(True), y, e, tol=5e-2, warn=False); v.backward(); return v
            add("ours, tol 0.05", k, None, ours, ours(x).item())
            def peer(xn, f=pot(e, 5e-2)):
                v = f(xn.detach().requires_grad_(True), y); v.backward(); return v
            add("POT sinkhorn_log, stopThr 0.05", k, None, peer, peer(x).item())
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0])); w.writeheader(); w.writerows(rows)
    out.with_suffix(".json").write_text(json.dumps(provenance(dict(vars(a), device=str(dev), eps_rel=EPS_REL, d=64)), indent=1) + "\n")
    print(f"wrote {out} and its .json")


if __name__ == "__main__":
    main()
