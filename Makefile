# The two commands a fresh machine needs (README.md):
#   make run    set up, then the main job: a quick CPU-sized training run (papermill nbs/train.ipynb)
#   make test   set up, then every test: nbdev_test over the notebooks and pytest tests/
VENV   ?= .venv
BIN    := $(VENV)/bin
FMNIST := /usr/share/datasets/fashion-mnist
METHOD ?= wdim
ARGS   ?=

.PHONY: setup data browser run demo test lab tables analyses notebooks docs export readme clean bench gpu-wheels gpu-check

setup: $(VENV)/.installed data

$(VENV)/.installed: settings.ini setup.py
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,notebooks,docs]'
	touch $@

# Fashion-MNIST comes from Debian (no download needed); other datasets download on first use when online.
data:
	@if [ ! -d $(FMNIST) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	  else echo "note: $(FMNIST) missing; run 'sudo apt-get install dataset-fashion-mnist' or let torchvision download it"; fi; \
	fi

# Debian's Chromium, for the test that opens the documentation site (skipped where it cannot be installed).
browser:
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "note: chromium not installed; the docs browser test will skip"; \
	  else echo "note: no chromium; 'sudo apt-get install chromium' runs the docs browser test"; fi; \
	fi

run: setup
	@mkdir -p runs
	$(BIN)/papermill nbs/train.ipynb runs/train_$(METHOD).ipynb -k python3 --log-output -p method $(METHOD) $(ARGS)

# The bounds on real data, no training: image + augmented view vs a shuffled baseline.
demo: setup
	@mkdir -p runs
	$(BIN)/papermill nbs/demo.ipynb runs/demo.ipynb -k python3 --log-output

test: setup browser
	$(BIN)/nbdev_export
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --timing --file_re '^([0-9]|index)'
	$(BIN)/pytest -q tests

# The papers' tables: every row x seed of wdim_nb.sweep.GRIDS[PRESET] through nbs/train.ipynb (resumable), then tables/.
PRESET ?= quick
tables: setup
	$(BIN)/python -m wdim_nb.sweep --grid $(PRESET) $(ARGS)

# The measurements beside the tables, each with the parameters of its committed files in figures/ (and tables/ for DIM
# Table 3): DIM Table 3 and App. A.3 read the quick grid's run folders under runs/ (`make tables` first); the others
# train their own small runs. Many CPU hours in all, one thread per script; DIM Table 3, ReMINE Table 2, MIGE Table 3,
# the IIC scripts and the ReMINE staircase resume or skip what they have finished, the others start over.
NN_RUNS = $(shell $(BIN)/python -c "from wdim_nb.sweep import GRIDS, runs_of; print(' '.join('runs/' + r.name for t, l, r in runs_of(GRIDS['quick'], tables=['wdim_table1'], seeds=[0]) if l in ('DIM(G)', 'DIM(JSD)', 'WDIM LGPC')))" 2>/dev/null)
analyses: setup
	$(BIN)/python scripts/dim_table3.py --runs runs --jobs 2
	$(BIN)/python scripts/nearest_neighbours.py $(NN_RUNS) --labels "DIM(G)" "DIM(JSD)" "WDIM LGPC"
	OMP_NUM_THREADS=1 $(BIN)/python scripts/wdim_stability.py --steps 1000 --seeds 2 --batch-sizes 16 32 64 128
	OMP_NUM_THREADS=1 $(BIN)/python scripts/remine_table.py --epochs 1 --max-steps 400 --n-reference 10000 --seeds 5
	OMP_NUM_THREADS=1 $(BIN)/python scripts/remine_explosion.py --steps 30000 --seeds 3
	OMP_NUM_THREADS=1 $(BIN)/python scripts/remine_staircase.py --steps 4000 --seeds 5 --lambdas 1 0.1 0.01 0.001 --jobs 2
	OMP_NUM_THREADS=1 $(BIN)/python scripts/ib_table.py --epochs 5 --seeds 3
	OMP_NUM_THREADS=1 $(BIN)/python scripts/iic_table.py --wasserstein-steps 80 --wasserstein-seeds 0 1
	OMP_NUM_THREADS=1 $(BIN)/python scripts/iic_curve.py --threads 1
	OMP_NUM_THREADS=1 $(BIN)/python scripts/learning_curve.py --jobs 2 --name train_learning_curve_preset --methods wdim \
	  "wdim+mi_bound=jsd+local_critic=concat+augment=none+cross_view=False" dim_lg dim_l mige
	OMP_NUM_THREADS=1 $(BIN)/python scripts/code_collapse.py --steps 700
	$(BIN)/papermill nbs/09_instability.ipynb /tmp/09_instability_large.ipynb -p scale large

# Execute every numbered notebook in place at its default (fast) scale, so that it reads with its plots on GitHub;
# figures they save go to a scratch folder (IN_TEST), the committed figures/ come from the recorded runs.
NOTEBOOKS ?= $(wildcard nbs/[0-9]*.ipynb)
notebooks: setup
	for nb in $(NOTEBOOKS); do IN_TEST=1 $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=1800 --ExecutePreprocessor.kernel_name=python3 $$nb || exit 1; done
	$(BIN)/nbdev_clean

# The documentation site (MkDocs + mkdocs-jupyter + mkdocstrings) in site/, and a screenshot of its first notebook.
docs: setup
	$(BIN)/python scripts/build_docs.py --site site
	@if command -v chromium >/dev/null; then cd site && (python3 -m http.server 8799 >/dev/null 2>&1 & echo $$! > /tmp/wdim_docs.pid; sleep 1; \
	  chromium --headless --no-sandbox --disable-gpu --virtual-time-budget=10000 --window-size=1280,1400 \
	    --screenshot=screenshot.png http://127.0.0.1:8799/nbs/01_bounds.html 2>/dev/null; kill $$(cat /tmp/wdim_docs.pid)); fi
	@echo "open site/index.html, or serve it: python3 -m http.server -d site"

# JupyterLab in the project's environment (the package is importable from every notebook); open nbs/index.ipynb first.
lab: setup
	$(BIN)/jupyter lab --notebook-dir=nbs $(if $(filter 0,$(shell id -u)),--allow-root,)

export:
	$(BIN)/nbdev_export

readme:
	$(BIN)/jupyter nbconvert --to markdown nbs/index.ipynb --output-dir . --output README --log-level WARN

clean:
	$(BIN)/nbdev_clean

bench:
	for f in bench/*.py; do $(BIN)/python $$f; done

# The GPU check (bench/README.md): `make gpu-wheels` on a networked machine, then `bash bench/gpu_check.sh` on the GPU.
# Wheels it installs offline: POT, GeomLoss, tqdm, pytest for CPython 3.10-3.12 on manylinux x86_64 (a few MB; POT is
# pinned to 0.9.6.post1, whose wheels are 1.5 MB where 0.9.7's are 33 MB). POT needs SciPy (~40 MB a wheel): fetched
# only for the Python versions listed in GPU_SCIPY, e.g. `make gpu-wheels GPU_SCIPY=3.11`.
GPU_WHEELS  := bench/wheels
GPU_PYTHONS ?= 3.10 3.11 3.12
GPU_SCIPY   ?=
PIP         ?= $(if $(wildcard $(BIN)/pip),$(BIN)/pip,python3 -m pip)
GPU_PLAT    := --only-binary=:all: --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
               --platform manylinux_2_24_x86_64 --platform manylinux_2_28_x86_64

gpu-wheels:
	mkdir -p $(GPU_WHEELS)
	for v in $(GPU_PYTHONS); do \
	  $(PIP) download -q $(GPU_PLAT) --python-version $$v -d $(GPU_WHEELS) pytest tqdm exceptiongroup tomli typing_extensions || exit 1; \
	  $(PIP) download -q $(GPU_PLAT) --python-version $$v --no-deps -d $(GPU_WHEELS) 'pot==0.9.6.post1' geomloss || exit 1; \
	done
	for v in $(GPU_SCIPY); do $(PIP) download -q $(GPU_PLAT) --python-version $$v --no-deps -d $(GPU_WHEELS) scipy || exit 1; done
	@du -sh $(GPU_WHEELS)

gpu-check:
	bash bench/gpu_check.sh
