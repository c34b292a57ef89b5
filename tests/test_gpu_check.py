"The GPU check's CPU rehearsal (`bash bench/gpu_check.sh --dry`): every step still runs end to end, so the check is ready."
import csv, json, os, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("bash") is None, reason="the GPU check is a bash script")
def test_gpu_check_dry_run(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry", str(tmp_path)], capture_output=True,
                       text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    status = {s["step"]: s["status"] for s in res["steps"]}
    for name in ("cuda_tests", "sinkhorn", "paper_slice", "stein", "debias"):
        assert status[name] == "ok", (name, status, p.stdout[-3000:])
    assert status["train_step"] == "ok", status                 # bench/train_step.py takes the check's command line
    assert status["train_step_compile"] == "ok", status         # ... also in bf16 alone, channels_last
    assert res["hardware"]["device"] == "cpu" and res["hardware"]["name"]
    rows = list(csv.DictReader(open(tmp_path / "gpu_check.csv", newline="")))
    assert {"cuda_tests", "sinkhorn", "paper_slice"} <= {r["section"] for r in rows}
    assert all(r["hardware"] == res["hardware"]["name"] for r in rows)
    paper = next(r for r in rows if r["section"] == "paper_slice" and r["metric"] == "non-finite logged values")
    assert paper["value"] == "0" and paper["meets"] == "True"
    sk = [r for r in rows if r["section"] == "sinkhorn"]
    assert sk and all(float(r["value"]) > 0 for r in sk)  # a speed-up was measured against at least one peer
    assert any(r["metric"].startswith("DIM(L)") for r in rows)
    assert any(r["metric"].startswith("WDIM step / DIM(L) step") for r in rows)


def _check_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu" / "check.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_targets_from_benchmark_rows():
    chk = _check_module()
    rows = [dict(method=m, batch_size=b, precision=p, images_per_s=str(v), bf16_peak_fraction=f)
            for m, v0, f in (("dim_l", 30000, "0.4"), ("wdim", 25000, "0.3")) for b in ("64", "256")
            for p, v in (("fp32", v0 / 2), ("bf16", v0))]
    out = chk.train_targets(rows, "t.csv")
    best = next(r for r in out if r["metric"].startswith("DIM(L)"))
    assert best["value"] == 30000 and best["meets"] and "precision=bf16" in best["detail"]
    ratios = [r for r in out if r["metric"].startswith("WDIM step")]
    assert len(ratios) == 4 and all(r["value"] == 1.2 and not r["meets"] for r in ratios)  # settings paired, not results
    sk = [dict(method="ours", comparison="matched accuracy (<= 1 %)", n="64", speedup_of_ours_vs_fastest_other="2.5",
               exact_verified="True", time_ms="1.0", setting="s", rel_err="0.004"),
          dict(method="ours", comparison="matched accuracy (<= 1 %)", n="4096", speedup_of_ours_vs_fastest_other="3.0",
               exact_verified="False", time_ms="9.0", setting="s", rel_err="")]
    meets = [r["meets"] for r in chk.sinkhorn_targets(sk)]
    assert meets == [True, False]  # a speed-up whose accuracy was not checked against exact OT does not count


def test_sinkhorn_graph_dry_run(tmp_path):
    "bench/gpu/sinkhorn_graph.py on the CPU at tiny sizes: every eager row runs and is checked against exact OT."
    out = tmp_path / "g.csv"
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu" / "sinkhorn_graph.py"), "--dry", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    rows = list(csv.DictReader(open(out, newline="")))
    assert {r["variant"] for r in rows} == {"sweeps, eager", "ours, tol 0.05", "POT sinkhorn_log, stopThr 0.05"}
    assert all(float(r["rel_err"]) < 0.05 and float(r["time_ms"]) > 0 for r in rows)
