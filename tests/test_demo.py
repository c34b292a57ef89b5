"The bounds demo notebook (papermill) runs on Fashion-MNIST and every bound separates real pairs from shuffled ones."
import os
from pathlib import Path

import pytest

root = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").exists(), reason="needs Debian's dataset-fashion-mnist")
def test_demo_notebook(tmp_path):
    pm = pytest.importorskip("papermill")
    pm.execute_notebook(str(root / "nbs/demo.ipynb"), str(tmp_path / "demo.ipynb"), kernel_name="python3",
                        parameters=dict(n=256, steps=30), cwd=str(root), progress_bar=False)
