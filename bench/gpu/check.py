"""One GPU check: CUDA tests, the Sinkhorn and SSGE benchmarks beside POT and GeomLoss, the training-step benchmark and a
slice of the `paper` preset, in one run of at most --budget seconds; writes gpu_check.csv and gpu_check.json to --out.

    bash bench/gpu_check.sh [OUTDIR]          # on a GPU machine (installs wheels from bench/wheels first)
    bash bench/gpu_check.sh --dry [OUTDIR]    # the same steps on the CPU at tiny sizes, in well under a minute

Each step runs in its own process with a time limit, so one failure or hang costs only that step; every step's status,
time and output tail go to the JSON, and the targets (DIM(L) images/s, WDIM/DIM(L) step ratio, Sinkhorn speed-up) to
the CSV with the hardware named. Needs only python, torch (and numpy); POT, GeomLoss and pytest are optional.
"""
import argparse, csv, json, math, os, platform, re, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGETS = dict(dim_l_images_per_s=20_000, wdim_over_dim_l_step=1.05, sinkhorn_speedup=2.0)


def hardware(dev):
    import torch
    hw = dict(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
              cpu=_cpu_name(), cpu_count=os.cpu_count(), device=dev)
    if dev == "cuda":
        p = torch.cuda.get_device_properties(0)
        hw.update(gpu=p.name, gpu_count=torch.cuda.device_count(), gpu_memory_gib=round(p.total_memory / 2**30, 1),
                  compute_capability=f"{p.major}.{p.minor}", cudnn=torch.backends.cudnn.version(),
                  bf16=torch.cuda.is_bf16_supported())
        try: hw["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                           capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception: pass
    for mod in ("numpy", "scipy", "ot", "geomloss", "pytest"):
        try: hw[mod] = __import__(mod).__version__
        except Exception as e: hw[mod] = f"unavailable ({type(e).__name__})"
    hw["name"] = (f"{hw['gpu']} ({hw['gpu_memory_gib']} GiB), CUDA {hw['cuda']}, torch {hw['torch']}" if dev == "cuda"
                  else f"{hw['cpu']} ({hw['cpu_count']} cores), torch {hw['torch']}")
    return hw


def _cpu_name():
    try: return next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except Exception: return platform.processor() or platform.machine()


def run_step(name, cmd, timeout, log, env=None):
    "Run one step as a subprocess; returns its record (status ok/failed/timeout, seconds, output tail)."
    t = time.time()
    shown = " ".join("<script>" if "\n" in str(c) else str(c) for c in cmd)
    print(f"[gpu_check] {name}: {shown} (limit {timeout:.0f} s)", flush=True)
    try:
        p = subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, **(env or {})})
        out, status = p.stdout + p.stderr, "ok" if p.returncode == 0 else f"failed (exit {p.returncode})"
    except subprocess.TimeoutExpired as e:
        out, status = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout"
    (log / f"{name}.log").write_text(out)
    rec = dict(step=name, status=status, seconds=round(time.time() - t, 1), command=shown,
               output_tail=out[-3000:])
    print(f"[gpu_check] {name}: {status} in {rec['seconds']} s", flush=True)
    return rec


def read_csv(path):
    with open(path, newline="") as fh: return list(csv.DictReader(fh))


def num(v):
    try: return float(v)
    except (TypeError, ValueError): return math.nan


def sinkhorn_targets(rows):
    "One row per n: our speed-up over the faster of POT and GeomLoss at matched accuracy (<= 1 % from exact OT)."
    out = []
    for r in rows:
        if r["method"] != "ours" or not r["comparison"].startswith("matched accuracy"): continue
        s, verified = num(r["speedup_of_ours_vs_fastest_other"]), r.get("exact_verified") == "True"
        out.append(dict(section="sinkhorn", metric=f"speed-up over fastest peer, n={r['n']}", value=round(s, 2), unit="x",
                        target=f">= {TARGETS['sinkhorn_speedup']}", meets=bool(s >= TARGETS["sinkhorn_speedup"] and verified),
                        detail=f"ours {num(r['time_ms']):.2f} ms ({r['setting']}, err {num(r['rel_err']):.3%}); "
                               f"accuracy {'checked against ot.emd2' if verified else 'NOT checked'}"))
    return out


def _col(cols, *keys):
    return next((c for c in cols if any(k in c.lower() for k in keys)), None)


def train_targets(rows, source):
    "DIM(L) images/s and the WDIM / DIM(L) step-time ratio from bench/train_step.py's CSV, whatever its column order."
    if not rows: return []
    cols = list(rows[0])
    mcol, icol = _col(cols, "method"), _col(cols, "images_per_s", "images/s", "img_per_s", "images")
    if not mcol or not icol:
        return [dict(section="train_step", metric="columns", value=None, unit="", target="", meets=False,
                     detail=f"{source}: no method / images-per-second column among {cols}")]
    peak = _col(cols, "peak")
    measured = ("peak", "frac", "ms", "time", "flop", "per_s", "/s", "speed")  # results, not settings
    keys = [c for c in cols if c not in (mcol, icol) and not any(k in c.lower() for k in measured)
            and _col([c], "batch", "precision", "dtype", "amp", "bf16", "compile", "channels", "image_size", "size")]
    by = {}
    for r in rows: by[(r[mcol], tuple(r[k] for k in keys))] = r
    out, dims = [], [r for r in rows if r[mcol] in ("dim_l", "dim(l)")]
    if dims:
        best = max(dims, key=lambda r: num(r[icol]))
        cfg = ", ".join(f"{k}={best[k]}" for k in keys)
        out.append(dict(section="train_step", metric="DIM(L) 32x32 images/s (best configuration)", value=round(num(best[icol])),
                        unit="images/s", target=f">= {TARGETS['dim_l_images_per_s']}",
                        meets=bool(num(best[icol]) >= TARGETS["dim_l_images_per_s"]),
                        detail=f"{source}: {cfg}" + (f"; {peak}={best[peak]}" if peak else "")))
    for (m, k), r in by.items():
        if not m.startswith("wdim") or ("dim_l", k) not in by: continue
        ratio = num(by[("dim_l", k)][icol]) / num(r[icol])  # step time ratio = inverse throughput ratio
        out.append(dict(section="train_step", metric=f"WDIM step / DIM(L) step ({', '.join(f'{a}={b}' for a, b in zip(keys, k))})",
                        value=round(ratio, 3), unit="x", target=f"<= {TARGETS['wdim_over_dim_l_step']}",
                        meets=bool(ratio <= TARGETS["wdim_over_dim_l_step"]), detail=source))
    return out


PAPER_SLICE = r'''
import json, math, sys, tempfile, time, torch
from wdim_nb.learner import Config, fit
from wdim_nb.data import get_dataset
steps, batch, dev, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ds = get_dataset("synthetic", "train", n=n, shape=(3, 32, 32))           # CIFAR-shaped synthetic images
kw = dict(batch_size=int(batch)) if batch != "paper" else {}
with tempfile.TemporaryDirectory() as out_dir:                           # the run's checkpoint is large: leave nothing
    cfg = Config(method="wdim", preset="paper", dataset="synthetic", max_steps=steps, device=dev, amp=dev == "cuda",
                 out_dir=out_dir, name="paper_slice", ckpt_every=10**9, log_every=1, nonfinite="stop", **kw)
    t = time.time()
    res = fit(cfg, dataset=ds, progress=False, fresh=True)
rows = res["metrics"]
bad = [(r["step"], k) for r in rows for k, v in r.items() if isinstance(v, float) and not math.isfinite(v)]
print(json.dumps(dict(steps=res["steps"], seconds=round(time.time() - t, 2), batch_size=res["cfg"].batch_size,
                      lr=res["cfg"].lr, arch=res["cfg"].arch, amp=cfg.amp, nonfinite=bad[:10], n_nonfinite=len(bad),
                      last={k: v for k, v in rows[-1].items() if isinstance(v, (int, float))})))
'''

DEBIAS = r'''
import json, statistics, sys, time, torch
import wdim_nb.sinkhorn as S
dev, reps, out = sys.argv[1], int(sys.argv[2]), []
sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
for n in map(int, sys.argv[3:]):
    g = torch.Generator().manual_seed(0)
    x, y = torch.sigmoid(torch.randn(n, 64, generator=g)).to(dev), torch.rand(n, 64, generator=g).to(dev)
    def call(batched):   # WDIM's prior term: the debiased divergence at eps 0.1, value and gradient
        S._launch_bound = lambda _: batched
        xg = x.clone().requires_grad_(True); sync(); t = time.perf_counter()
        S.sinkhorn(xg, y, 0.1, debias=True).backward(); sync()
        return time.perf_counter() - t
    ts = {b: [] for b in (True, False)}
    for r in range(reps + 1):          # round-robin; the first round warms up
        for b in ts:
            t = call(b)
            if r: ts[b].append(t)
    med = {b: statistics.median(v) * 1e3 for b, v in ts.items()}
    out.append(dict(n=n, batched_ms=round(med[True], 3), three_solves_ms=round(med[False], 3)))
print(json.dumps(out))
'''


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "runs" / "gpu_check"))
    ap.add_argument("--dry", action="store_true", help="CPU, tiny sizes: checks that every step still runs")
    ap.add_argument("--budget", type=float, default=None, help="seconds for all steps (default 420, dry 300)")
    ap.add_argument("--paper-steps", type=int, default=300)
    ap.add_argument("--install-log", default=None, help="the wheel installation log of gpu_check.sh, kept in the JSON")
    a = ap.parse_args(argv)
    import torch
    dev = "cpu" if a.dry else "cuda"
    if dev == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device is visible to torch; run with --dry for the CPU rehearsal")
    out = Path(a.out); raw = out / "raw"; raw.mkdir(parents=True, exist_ok=True)
    budget = a.budget or (300 if a.dry else 420)
    deadline, py = time.time() + budget, sys.executable
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}".rstrip(os.pathsep)}
    if a.dry: env["OMP_NUM_THREADS"] = "1"
    hw = hardware(dev)
    print(f"[gpu_check] {hw['name']}", flush=True)
    steps, rows = [], []

    def save(final=False):
        "Write gpu_check.csv and gpu_check.json from what has run so far (after every step, so a killed run keeps them)."
        table = [dict(r, hardware=hw["name"]) for r in rows]
        for r in steps:
            if r["status"] != "ok" and r["step"] not in {x["section"] for x in table}:
                table.append(dict(section=r["step"], metric="status", value=None, unit="", target="ok", meets=False,
                                  detail=r["status"], hardware=hw["name"]))
        keys = ["section", "metric", "value", "unit", "target", "meets", "detail", "hardware"]
        with open(out / "gpu_check.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, keys); w.writeheader(); w.writerows(table)
        inst = Path(a.install_log).read_text()[-4000:] if a.install_log and Path(a.install_log).exists() else None
        summary = dict(mode="dry (CPU, tiny sizes)" if a.dry else "full", complete=final, hardware=hw, budget_s=budget,
                       seconds=round(time.time() - deadline + budget, 1), targets=TARGETS, steps=steps, results=table,
                       install_log=inst, commit=_commit())
        (out / "gpu_check.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
        return table, summary

    def step(name, cmd, limit, **kw):
        left = deadline - time.time()
        if left < 15:
            rec = dict(step=name, status="skipped (time budget spent)", seconds=0, command=" ".join(map(str, cmd)))
            print(f"[gpu_check] {name}: {rec['status']}", flush=True)
        else: rec = run_step(name, cmd, min(limit, left - 5), raw, env)
        rec.update(kw); steps.append(rec); save()
        return rec

    # 1. the CUDA-only tests (on the CPU rehearsal they are collected and skipped)
    files = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests").glob("test_*.py")) if "torch.cuda.is_available()" in p.read_text()]
    try: import pytest  # noqa: F401
    except ImportError: steps.append(dict(step="cuda_tests", status="skipped (pytest unavailable)", seconds=0))
    else:
        rec = step("cuda_tests", [py, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-k", "cuda", *files], 120, files=files)
        m = re.findall(r"(\d+) (passed|failed|skipped|error)", rec.get("output_tail", ""))
        rec["counts"] = {k: int(v) for v, k in m}
        rows.append(dict(section="cuda_tests", metric="passed / failed / skipped", value=rec["counts"].get("passed", 0),
                         unit="tests", target="all pass", meets=rec["status"] == "ok" and rec["counts"].get("passed", 0) > 0,
                         detail=f"{rec['counts']} in {', '.join(files)}"))

    # 2. Sinkhorn beside POT and GeomLoss on the same device; SSGE
    sk_csv = raw / f"sinkhorn_bench_{dev}.csv"
    sk = (["--n", "32", "--reps", "1", "--exact-max-n", "32", "--full-ladder-max-n", "16"] if a.dry else
          ["--n", "64", "256", "1024", "4096", "--reps", "5", "--full-ladder-max-n", "4096", "--budget", "5"])
    rec = step("sinkhorn", [py, "bench/sinkhorn.py", "--device", dev, *sk, "--out", sk_csv], 150)
    if rec["status"] == "ok" and sk_csv.exists(): rows += sinkhorn_targets(read_csv(sk_csv))

    # 3. the training step, eager (fp32 and bf16 reported by the script itself); the compiled variant runs last (step 6)
    help_txt = subprocess.run([py, "bench/train_step.py", "--help"], cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env}).stdout
    tr = (["--methods", "dim_l", "wdim", "--batch-sizes", "8", "--image-size", "32", "--steps", "1", "--reps", "1"] if a.dry else
          ["--methods", "dim_l", "dim_lg", "wdim", "mige", "--batch-sizes", "64", "256", "1024", "--image-size", "32", "--steps", "20"])

    def train(name, extra, limit):
        if "--batch-sizes" not in help_txt:
            steps.append(dict(step=name, status="skipped (bench/train_step.py does not accept --batch-sizes yet)", seconds=0))
            return
        csv_path = raw / f"{name}_{dev}.csv"
        rec = step(name, [py, "bench/train_step.py", "--device", dev, *tr, *extra, "--out", csv_path], limit)
        if rec["status"] == "ok" and csv_path.exists(): rows.extend(train_targets(read_csv(csv_path), csv_path.name))

    train("train_step", [], 150)

    # 4. a slice of the `paper` preset: WDIM on CIFAR-shaped synthetic images, every logged value finite
    ps = ["3", "8", dev, "64"] if a.dry else [str(a.paper_steps), "paper", dev, "8192"]
    rec = step("paper_slice", [py, "-c", PAPER_SLICE, *ps], 150)
    if rec["status"] == "ok":
        res = json.loads(rec["output_tail"].strip().splitlines()[-1]); rec["result"] = res
        rows.append(dict(section="paper_slice", metric="non-finite logged values", value=res["n_nonfinite"], unit="count",
                         target="0", meets=res["n_nonfinite"] == 0 and res["steps"] == int(ps[0]),
                         detail=f"WDIM paper preset, {res['steps']} steps, batch {res['batch_size']}, lr {res['lr']}, "
                                f"bf16 autocast {res['amp']}, {res['seconds']} s"))
        rows.append(dict(section="paper_slice", metric="steps/s", value=round(res["steps"] / max(res["seconds"], 1e-9), 1),
                         unit="steps/s", target="", meets=None, detail="including set-up"))
    else:
        rows.append(dict(section="paper_slice", metric="non-finite logged values", value=None, unit="count", target="0",
                         meets=False, detail=rec["status"] + ": " + rec.get("output_tail", "")[-300:].replace("\n", " | ")))

    # 5. SSGE (the MIGE score estimator) on the device
    st_csv = raw / f"stein_bench_{dev}.csv"
    st = ["--sizes", "64", "--dims", "8", "--repeats", "1", "--threads", "1"] if a.dry else ["--repeats", "5"]
    step("stein", [py, "bench/stein.py", "--device", dev, *st, "--out", st_csv], 90)

    # 5b. the debiased divergence (WDIM's prior term): its three problems as one batched solve against three solves
    rec = step("debias", [py, "-c", DEBIAS, dev, *(["1", "16"] if a.dry else ["20", "64", "256", "1024"])], 60)
    if rec["status"] == "ok":
        for r in json.loads(rec["output_tail"].strip().splitlines()[-1]):
            rows.append(dict(section="debias", metric=f"three solves / one batched solve, n={r['n']}",
                             value=round(r["three_solves_ms"] / r["batched_ms"], 2), unit="x", target="", meets=None,
                             detail=f"batched {r['batched_ms']} ms, three solves {r['three_solves_ms']} ms (value + gradient)"))

    # 6. last, since compilation takes what time is left: compiled networks in channels_last, bf16, batch 256, for the
    #    two methods the targets name (flags given twice: the later wins); the CPU rehearsal runs it without compiling
    train("train_step_compile", ([] if a.dry else ["--compile", "--batch-sizes", "256"])
          + ["--channels-last", "--precisions", "bf16", "--methods", "dim_l", "wdim"], 240)

    rows, summary = save(final=True)
    print(f"[gpu_check] wrote {out / 'gpu_check.csv'} and gpu_check.json in {summary['seconds']} s")
    for r in rows: print(f"  {r['section']:12s} {r['metric']:60s} {r['value']!s:>10} {r['unit']:9s} {r['target']:>8} "
                         f"{'' if r['meets'] is None else 'MEETS' if r['meets'] else 'misses'}")
    failed = [s["step"] for s in steps if s["status"] not in ("ok",) and not s["status"].startswith("skipped")]
    return 1 if failed else 0


def _commit():
    "HEAD, whether the tree differs from it, and a hash of the code that ran (a copied tree's .git can lag its files)."
    import hashlib
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    h = hashlib.sha256()
    for p in sorted([*ROOT.glob("wdim_nb/*.py"), *ROOT.glob("bench/**/*.py"), *ROOT.glob("bench/*.sh")]):
        h.update(str(p.relative_to(ROOT)).encode()); h.update(p.read_bytes())
    try: head, dirty = git("rev-parse", "HEAD") or None, bool(git("status", "--porcelain", "--", "wdim_nb", "bench"))
    except Exception: head, dirty = None, None
    return dict(head=head, code_differs_from_head=dirty, code_sha256=h.hexdigest())


if __name__ == "__main__":
    sys.exit(main())
