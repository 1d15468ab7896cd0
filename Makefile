# Two commands work on a fresh machine with Python 3.11, Node/npm, git and make:
#   make test   install everything, lint, and run the whole suite
#   make demo   bring the local stack up, run the main job against it, tear it down
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

.PHONY: test demo lint install clean unit integration bench

install: $(STAMP) $(NODE_STAMP)

$(STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# pytest exits 5 when it collects nothing; that must fail the build, and it does (non-zero).
test: install lint
	$(VENV)/bin/pytest -q -p no:cacheprovider

unit: $(STAMP)
	$(VENV)/bin/pytest -q tests/unit

integration: install
	$(VENV)/bin/pytest -q tests/integration tests/e2e

demo: install
	$(PY) examples/demo.py

bench: install
	$(PY) -m bench

# dist/: the Functions deployment zip (with Linux x86_64 / Python 3.11 wheels), the wheel and the sdist.
.PHONY: package
package: $(STAMP)
	$(PY) infra/package.py --out dist

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache build dist *.egg-info
