# Sonjog: `make demo` and `make test` are the whole set-up on a fresh clone (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian packages the tests drive for real: FreeRADIUS with its PostgreSQL module and radclient,
# Chromium for the browser tests (with a Bangla font for the screenshots), gettext for translations.
SYSTEM_PACKAGES := freeradius freeradius-postgresql freeradius-utils chromium fonts-lohit-beng-bengali gettext

.PHONY: install system-deps demo test test-only lint typecheck lock bench messages

install: $(STAMP)

$(STAMP): requirements/dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: install
	$(BIN)/sonjog migrate --no-input -v0
	$(BIN)/sonjog demo

system-deps:
	bash scripts/install-system-deps.sh $(SYSTEM_PACKAGES)

test: install system-deps test-only

test-only:
	$(BIN)/sonjog makemigrations --check --dry-run -v0
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy sonjog
	$(BIN)/lint-imports

lock:
	$(BIN)/uv pip compile --python-version 3.11 --generate-hashes --no-header --no-emit-index-url pyproject.toml -o requirements/base.txt
	$(BIN)/uv pip compile --python-version 3.11 --generate-hashes --no-header --no-emit-index-url --extra dev pyproject.toml -o requirements/dev.txt

bench: install
	$(BIN)/sonjog migrate --no-input -v0
	$(BIN)/sonjog bench --subscribers 30000 --months 36

messages: install
	$(BIN)/sonjog makemessages -l bn --no-wrap --no-location --ignore='*/tests/*' --ignore='var/*' --ignore='.venv/*'
	cd sonjog && ../$(BIN)/django-admin compilemessages -l bn
