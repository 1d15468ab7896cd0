# Two commands work on a fresh machine with Python 3.11, Node/npm, git and make:
#   make test   install everything, lint, and run the whole suite
#   make demo   bring the local stack up, run the main job against it, tear it down
# and the local stack to try SynosCD by hand (README, "Try it on the local stack"):
#   make up     the stand-ins, Azurite and the local Functions host, until Ctrl-C
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

.PHONY: test demo lint install clean unit integration bench screenshots up
# The dashboard's browser tests drive Debian's chromium (browser downloads from elsewhere fail here;
# `playwright install` is never run): installed when missing, as root or through sudo.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

install: $(STAMP) $(NODE_STAMP)

# Installs come only from the hash-checked locks (requirements*.txt, written by `make lock`): a new
# release of any dependency cannot change what CI, the demo or the Function App runs.
$(STAMP): pyproject.toml requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $@

# make lock: add what pyproject.toml gained, keep every other pin; make lock-upgrade: newest of all.
# requirements.txt is what Azure builds (runtime + azure-functions); requirements-dev.txt adds the
# tools and is constrained to the same versions.
UV_VERSION := 0.13.9
LOCK_FLAGS := --quiet --generate-hashes --universal --python-version 3.11 --custom-compile-command "make lock"
.PHONY: lock lock-upgrade
lock lock-upgrade:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(VENV)/bin/uv pip compile pyproject.toml --extra functions $(LOCK_FLAGS) \
	  $(if $(filter lock-upgrade,$@),--upgrade) -o requirements.txt
	$(VENV)/bin/uv pip compile pyproject.toml --extra functions --extra dev -c requirements.txt \
	  $(LOCK_FLAGS) $(if $(filter lock-upgrade,$@),--upgrade) -o requirements-dev.txt

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# pytest exits 5 when it collects nothing; that must fail the build, and it does (non-zero). Two
# workers (pytest-xdist, one test file each at a time): much of the suite waits on the local stack.
test: install lint $(CHROMIUM)
	$(VENV)/bin/pytest -q -p no:cacheprovider -n 2 --dist loadfile

unit: $(STAMP)
	$(VENV)/bin/pytest -q tests/unit

integration: install $(CHROMIUM)
	$(VENV)/bin/pytest -q tests/integration tests/e2e

demo: install
	$(PY) examples/demo.py

bench: install
	$(PY) -m bench

# Re-take docs/screenshots/*.png with the browser tests (a plain test run writes them to a temp folder).
screenshots: install $(CHROMIUM)
	SYNOSCD_UPDATE_SCREENSHOTS=1 $(VENV)/bin/pytest -q -p no:cacheprovider tests/e2e/test_dashboard.py \
	  -k "overview or drifted"

# The local stack with the examples committed, the local Functions host and push webhooks, until
# Ctrl-C; writes $(ENV_FILE) for `source`. OPS=DIR commits another ops folder (or folder of manifests).
ENV_FILE ?= .stack.env
OPS ?= examples
up: install
	$(PY) -m emulators up --env-file $(ENV_FILE) --ops $(OPS) --functions

# dist/: the Functions deployment zip (with Linux x86_64 / Python 3.11 wheels), the wheel and the sdist.
.PHONY: package
package: $(STAMP)
	$(PY) infra/package.py --out dist

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache build dist *.egg-info
