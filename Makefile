# modelsafe developer tasks. Needs only Python >= 3.11 and GNU make.
#
#   make demo       create .venv (pinned by constraints.txt) and run the tour
#   make test       fast test suite (everything not marked slow)
#   make test-all   whole test suite, slow sweeps included
#   make lint       ruff check, ruff format --check, mypy (strict on src/modelsafe)
#   make bench      full benchmarks (numpy payloads, the model zoo, signing); make bench-quick for a short run
#   make fuzz       fuzz the reader with atheris for FUZZ_SECONDS (default 300; .fuzz/ keeps the corpus)
#   make lock       re-resolve dependencies from pyproject.toml and rewrite constraints.txt
#   make clean      remove .venv, build artefacts and caches

PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LINT_PATHS := src tests benchmarks fuzz

.PHONY: test test-all lint demo bench bench-quick fuzz lock clean

FUZZ_SECONDS ?= 300
FUZZ_STAMP := $(VENV)/.fuzz-installed

# The interpreter exists: create the venv once. Order-only below, so the
# symlink's timestamp never triggers a reinstall.
$(VENV_PY):
	@test -n "$(PY)" || { echo "error: python3.11 or python3 not found (set PY=...)" >&2; exit 1; }
	$(PY) -m venv $(VENV)
	$(VENV_PY) -m pip install --upgrade pip

# Reinstall only when the dependency declarations change.
$(STAMP): pyproject.toml constraints.txt | $(VENV_PY)
	$(VENV_PY) -m pip install -c constraints.txt -e '.[dev]'
	touch $@

# `make .venv`: the environment, created and installed.
$(VENV): $(STAMP)

test: $(STAMP)
	$(VENV_PY) -m pytest -m "not slow" -q

test-all: $(STAMP)
	$(VENV_PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

demo: $(STAMP)
	$(VENV)/bin/modelsafe demo

bench: $(STAMP)
	$(VENV_PY) -m benchmarks.run --suite all

# atheris only here: a 35 MB wheel the test suite does not need.
$(FUZZ_STAMP): $(STAMP)
	$(VENV_PY) -m pip install -c constraints.txt -e '.[dev,fuzz]'
	touch $@

fuzz: $(FUZZ_STAMP)
	$(VENV_PY) -m fuzz.run --seconds $(FUZZ_SECONDS)

bench-quick: $(STAMP)
	$(VENV_PY) -m benchmarks.run --suite all --quick

# Resolve without the old pins (pip keeps installed versions that still fit;
# `make clean lock` re-resolves everything), then freeze the result.
lock: | $(VENV_PY)
	$(VENV_PY) -m pip install -e '.[dev,fuzz]'
	{ echo '# Pinned versions of every dependency (direct and transitive) used by `make .venv`.'; \
	  echo '# Regenerate with `make lock` (pip freeze --exclude-editable of .venv); do not edit by hand.'; \
	  $(VENV_PY) -m pip freeze --exclude-editable | grep -viE '^(-e |modelsafe([ =@]|$$))'; \
	} > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt
	touch $(STAMP)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
