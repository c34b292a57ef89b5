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
    for name in ("cuda_tests", "sinkhorn", "paper_slice", "stein"):
        assert status[name] == "ok", (name, status, p.stdout[-3000:])
    # bench/train_step.py takes the check's command line once it has --batch-sizes; until then the step says so
    assert status["train_step"] == "ok" or "does not accept --batch-sizes" in status["train_step"], status
    assert res["hardware"]["device"] == "cpu" and res["hardware"]["name"]
    rows = list(csv.DictReader(open(tmp_path / "gpu_check.csv", newline="")))
    assert {"cuda_tests", "sinkhorn", "paper_slice"} <= {r["section"] for r in rows}
    assert all(r["hardware"] == res["hardware"]["name"] for r in rows)
    paper = next(r for r in rows if r["section"] == "paper_slice" and r["metric"] == "non-finite logged values")
    assert paper["value"] == "0" and paper["meets"] == "True"
    sk = [r for r in rows if r["section"] == "sinkhorn"]
    assert sk and all(float(r["value"]) > 0 for r in sk)  # a speed-up was measured against at least one peer
    if status["train_step"] == "ok":
        assert any(r["metric"].startswith("DIM(L)") for r in rows)
