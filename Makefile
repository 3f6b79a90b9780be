# The commands of the README. Each creates .venv (if missing) and installs the pinned requirements first.
#   make demo       the main job on the built-in simulated data (CPU, a few minutes)
#   make test       the whole test suite, offline
#   make example    your-own-video path: the speech-only model on a committed example video, scored (CPU)
# And for development:
#   make test-fast  the suite without the tests marked slow (under a minute on two cores)
#   make lint       ruff lint, ruff format check and mypy (what CI runs before the tests)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.quag-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

# pytest with the given arguments. Exit code 5 ("no tests collected") means the suite is broken: say so. Make itself
# exits with 2 whatever the recipe's code, so this is the only place that can tell it apart.
define pytest
	$(PY) -m pytest $(1); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests (exit code 5): the suite is broken" >&2; fi; \
	exit $$status
endef

.PHONY: setup demo example test test-fast lint clean-sim

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: setup
	$(VENV)/bin/quag demo

# trains configs/sim_speech_cpu.yaml first if runs/sim_speech_cpu has no checkpoint (a few minutes, with progress)
example: setup
	$(VENV)/bin/quag example

test: setup
	$(call pytest,)

test-fast: setup
	$(call pytest,-m "not slow")

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy src/quag

clean-sim:
	rm -rf data/hirest-sim
