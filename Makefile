# The two commands a fresh machine needs (README.md):
#   make run    set up, then the main job: a quick CPU-sized training run (papermill nbs/train.ipynb)
#   make test   set up, then every test: nbdev_test over the notebooks and pytest tests/
VENV   ?= .venv
BIN    := $(VENV)/bin
FMNIST := /usr/share/datasets/fashion-mnist
METHOD ?= wdim
ARGS   ?=

.PHONY: setup data run demo test export readme clean bench

setup: $(VENV)/.installed data

$(VENV)/.installed: settings.ini setup.py
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Fashion-MNIST comes from Debian (no download needed); other datasets download on first use when online.
data:
	@if [ ! -d $(FMNIST) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	  else echo "note: $(FMNIST) missing; run 'sudo apt-get install dataset-fashion-mnist' or let torchvision download it"; fi; \
	fi

run: setup
	@mkdir -p runs
	$(BIN)/papermill nbs/train.ipynb runs/train_$(METHOD).ipynb -k python3 -p method $(METHOD) $(ARGS)

# The bounds on real data, no training: image + augmented view vs a shuffled baseline.
demo: setup
	@mkdir -p runs
	$(BIN)/papermill nbs/demo.ipynb runs/demo.ipynb -k python3 --log-output

test: setup
	$(BIN)/nbdev_export
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --timing --file_re '^([0-9]|index)'
	$(BIN)/pytest -q tests

export:
	$(BIN)/nbdev_export

readme:
	$(BIN)/jupyter nbconvert --to markdown nbs/index.ipynb --output-dir . --output README --log-level WARN

clean:
	$(BIN)/nbdev_clean

bench:
	for f in bench/*.py; do $(BIN)/python $$f; done
