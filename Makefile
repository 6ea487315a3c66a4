# Mission Watch task runner. `make run` and `make test` are the two commands in README.md;
# .ci/run calls `make test` after installing the system packages the tests need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench help

help:
	@echo "make run     install into $(VENV) and serve the dashboard on the demo roster"
	@echo "make test    install into $(VENV), lint, and run the whole test suite"
	@echo "make lint    ruff over the tree"
	@echo "make bench   run the benchmarks (prints ratios against the usual way), the wall"
	@echo "             display's soak in headless chromium, and the"
	@echo "             outreach load test (SQLite; PostgreSQL too if TEST_DATABASE_URL is set)"
	@echo "             and, with TEST_DATABASE_URL, the load test under gunicorn"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,postgres]'
	touch $@

run: install
	$(BIN)/python app.py serve

lint: install
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

bench: install
	$(BIN)/python -m benchmarks.impact
	$(BIN)/python -m benchmarks.overview
	$(BIN)/python -m benchmarks.wall
	$(BIN)/python -m benchmarks.wall_soak
	$(BIN)/python -m benchmarks.outreach_load
	if [ -n "$$TEST_DATABASE_URL" ]; then \
		$(BIN)/python -m benchmarks.outreach_load --database-url "$$TEST_DATABASE_URL"; fi
	if [ -n "$$TEST_DATABASE_URL" ]; then \
		$(BIN)/python -m benchmarks.load --database-url "$$TEST_DATABASE_URL"; fi
