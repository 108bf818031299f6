# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# Both create .venv and install what is missing (Python packages from pyproject.toml; PostgreSQL
# through apt-get for the tests when no server is given).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall whenever the declared dependencies change.
INSTALLED := $(VENV)/.installed

.PHONY: run test lint format bench locales clean

run: $(INSTALLED)
	$(BIN)/hearback run

# ruff, then the whole suite twice: on SQLite, and on PostgreSQL (TEST_POSTGRES_URL, or a
# throw-away cluster that scripts/with-postgres makes and removes).
test: $(INSTALLED) redis-server browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@echo "== pytest on SQLite =="
	env -u HEARBACK_TEST_DATABASE_URL $(BIN)/pytest -q
	@echo "== pytest on PostgreSQL =="
	scripts/with-postgres $(BIN)/pytest -q

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(INSTALLED)
	$(BIN)/python bench/jobqueue.py
	scripts/with-postgres $(BIN)/python bench/jobqueue.py

# Customer texts → translators: extract every `text(name, english)` (babel.cfg says where) into
# bot/locales/hearback.pot, then merge it into each bot/locales/<locale>/LC_MESSAGES/hearback.po.
# A new text arrives untranslated; a reworded one keeps its old translation marked fuzzy (unused
# until a translator checks it). tests/unit/test_i18n.py lists what is left to translate. The
# .pot is only replaced when more than its creation date changed, so a no-op run leaves no diff.
locales: $(INSTALLED)
	$(BIN)/pybabel --quiet extract -F babel.cfg -k text:2 --no-default-keywords --no-location \
	  --project=Hearback --copyright-holder=Hearback -o bot/locales/hearback.pot.new .
	@if diff -q -I '^"POT-Creation-Date: ' bot/locales/hearback.pot bot/locales/hearback.pot.new >/dev/null 2>&1; \
	  then rm bot/locales/hearback.pot.new; else mv bot/locales/hearback.pot.new bot/locales/hearback.pot; fi
	$(BIN)/pybabel --quiet update -i bot/locales/hearback.pot -d bot/locales -D hearback --previous --ignore-obsolete

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3-venv is missing: installing it with apt-get"; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3-venv >/dev/null; \
	  rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The shared dedupe store's tests (REDIS_URL) start a throw-away redis-server of their own.
.PHONY: redis-server
redis-server:
	@command -v redis-server >/dev/null || { \
	  echo "redis-server is missing: installing it with apt-get"; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -qq redis-server >/dev/null; }

# The sandbox page's browser test drives the system's Chromium through chromedriver (Debian
# packages: nothing is downloaded by a test tool); CJK and emoji fonts make its screenshots show
# the Chinese customer and the case cards as people see them.
BROWSER_PACKAGES := chromium chromium-driver fonts-noto-cjk fonts-noto-color-emoji
.PHONY: browser
browser:
	@missing=$$(for p in $(BROWSER_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing with apt-get for the browser test:" $$missing; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$missing >/dev/null; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
