# The two set-up commands of the README: `make demo` and `make test`.
# Each creates the virtual environment and installs what it needs on its own.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the tests use as real peers (broker, Hamlib binaries).
APT_PACKAGES := mosquitto libhamlib-utils openssl
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint typecheck unit sysdeps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Installs the Debian packages only when one of their binaries is missing.
sysdeps:
	@if ! command -v mosquitto >/dev/null || ! command -v rotctld >/dev/null || ! command -v openssl >/dev/null; then \
		echo "installing Debian packages: $(APT_PACKAGES)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

demo: $(STAMP)
	$(BIN)/groundlink demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) sysdeps
	$(BIN)/pytest -n 2 -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/passes.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
