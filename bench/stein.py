"""Time per `ssge` call: n in {256, 1024, 4096} samples, d in {64, 3072}, with and without `proj_dim`.

Run by hand:  python bench/stein.py [--threads 1] [--device cpu|cuda] [--repeats 5] [--max-n 4096] [--out FILE.csv]
Prints a table of milliseconds per call (median of `repeats`) and ratios to the baseline n=1024, d=64, no projection,
measured in the same run (wall clock and process CPU time), and two targets: n=1024, d=64 under 50 ms; with projection,
d=3072 within 1.5x of d=64. Writes figures/stein_bench[_cuda].csv (+ .json provenance), or --out, unless --no-save.
Needs only torch and wdim_nb.
"""
import argparse, csv, json, platform, statistics, time
from pathlib import Path

import torch

from wdim_nb.stein import ssge
from wdim_nb.core import get_device


def time_call(fn, repeats, sync):
    "Median wall-clock and median process CPU seconds per call (CPU time is less sensitive to other jobs' load)."
    fn(); sync()                                    # warm-up (allocations, MKL/cuBLAS init)
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time(); fn(); sync()
        wall.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-n", type=int, default=4096)
    ap.add_argument("--proj-dim", type=int, default=64)
    ap.add_argument("--n-eigen", type=int, default=32, help="fixed J for the main grid (threshold rows use the default)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096], help="sample sizes n")
    ap.add_argument("--dims", type=int, nargs="+", default=[64, 3072], help="dimensions d")
    ap.add_argument("--out", default=None, help="CSV path (JSON beside it) instead of figures/")
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    dev, dtype = get_device(a.device), getattr(torch, a.dtype)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    g = torch.Generator(device=dev).manual_seed(0)
    rows = []
    for n in [m for m in a.sizes if m <= a.max_n]:
        for d in a.dims:
            X = torch.randn(n, d, generator=g, device=dev, dtype=dtype)
            configs = [("n_eigen", dict(n_eigen=a.n_eigen)), ("n_eigen+proj", dict(n_eigen=a.n_eigen, proj_dim=a.proj_dim))]
            if n <= 1024: configs += [("threshold", {}), ("threshold+proj", dict(proj_dim=a.proj_dim))]
            for name, opts in configs:
                reps = a.repeats if n <= 1024 else max(1, a.repeats // 2)
                wall, cpu = time_call(lambda: ssge(X, **opts), reps, sync)
                rows.append(dict(n=n, d=d, options=name, proj_dim=opts.get("proj_dim"), ms=round(1e3 * wall, 2),
                                 cpu_ms=round(1e3 * cpu, 2)))
                print(f"n={n:5d} d={d:5d} {name:15s} {1e3 * wall:9.1f} ms wall {1e3 * cpu:9.1f} ms cpu", flush=True)
    base = [r for r in rows if (r["n"], r["d"], r["options"]) == (1024, 64, "n_eigen")]
    if base:
        for r in rows:
            r["ratio_to_n1024_d64"] = round(r["ms"] / base[0]["ms"], 2)
            r["cpu_ratio_to_n1024_d64"] = round(r["cpu_ms"] / base[0]["cpu_ms"], 2)
    print()
    for r in rows: print("  ".join(f"{k}={v}" for k, v in r.items()))
    hw = (torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{platform.processor() or platform.machine()} CPU")
    info = dict(device=str(dev), hardware=hw, torch=torch.__version__, dtype=a.dtype, threads=torch.get_num_threads(),
                repeats=a.repeats, n_eigen=a.n_eigen, proj_dim=a.proj_dim, note="median ms per call")
    if base:
        p = lambda d, o, col="ms": next(r[col] for r in rows if (r["n"], r["d"], r["options"]) == (1024, d, o))
        print(f"\ntarget 1: n=1024, d=64 (n_eigen={a.n_eigen}): {p(64, 'n_eigen'):.1f} ms wall, "
              f"{p(64, 'n_eigen', 'cpu_ms'):.1f} ms cpu (target < 50 ms); default threshold: "
              f"{p(64, 'threshold'):.1f} ms wall, {p(64, 'threshold', 'cpu_ms'):.1f} ms cpu")
        print(f"target 2: with proj_dim={a.proj_dim}, d=3072 / d=64 at n=1024: "
              f"{p(3072, 'n_eigen+proj') / p(64, 'n_eigen+proj'):.2f}x (n_eigen), "
              f"{p(3072, 'threshold+proj') / p(64, 'threshold+proj'):.2f}x (threshold); target <= 1.5x; "
              f"without projection: {p(3072, 'n_eigen') / p(64, 'n_eigen'):.2f}x; same in CPU time: "
              f"{p(3072, 'n_eigen+proj', 'cpu_ms') / p(64, 'n_eigen+proj', 'cpu_ms'):.2f}x, "
              f"{p(3072, 'threshold+proj', 'cpu_ms') / p(64, 'threshold+proj', 'cpu_ms'):.2f}x, "
              f"{p(3072, 'n_eigen', 'cpu_ms') / p(64, 'n_eigen', 'cpu_ms'):.2f}x")
    if a.out:
        out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="") as fh:
            w = csv.DictWriter(fh, list(dict.fromkeys(k for r in rows for k in r))); w.writeheader(); w.writerows(rows)
        out.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    elif not a.no_save:
        import pandas as pd
        from wdim_nb.core import save_table
        save_table(pd.DataFrame(rows), "stein_bench" + ("_cuda" if dev.type == "cuda" else ""), info)
    return rows

if __name__ == "__main__":
    main()
