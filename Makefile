# The README's two commands: `make demo` (set up and run everything locally) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export LOCAL_DEV ?= 1

.PHONY: setup demo test lint format bench bench-scale bench-tracking bench-returns bench-notifications bench-all clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

setup: $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	bash scripts/setup-extras.sh

demo: setup
	$(BIN)/python manage.py demo

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=devshop.settings $(BIN)/python manage.py makemigrations devshop --check --dry-run

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Webhook intake vs a bare view (SQLite + embedded Redis unless DATABASE_URL / REDIS_URL).
bench: setup
	$(BIN)/python bench/webhooks.py

# The scale dataset (1M orders, 10M events) in <database>_scale, built once and reused:
# DATABASE_URL=postgres://postgres@127.0.0.1:5432/wta make bench-scale [BENCH_ARGS="--orders 100000"]
bench-scale: setup
	$(BIN)/python bench/scale.py $(BENCH_ARGS)

# Need PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/test make bench-tracking
bench-tracking: setup
	$(BIN)/python bench/tracking.py

# PostgreSQL too; starts its own devshop: DATABASE_URL=postgres://…/postgres make bench-returns
bench-returns: setup
	$(BIN)/python bench/returns.py

bench-notifications: setup
	$(BIN)/python bench/notifications.py

# Every bench above on PostgreSQL, ~7 min on 2 cores; one table in bench/out/results.md.
# DATABASE_URL=postgres://postgres@127.0.0.1:5432/wta make bench-all (knobs: bench/all.py --help)
bench-all: setup
	@case "$$DATABASE_URL" in postgres://*|postgresql://*) ;; \
	  *) echo "bench-all needs PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> make bench-all" >&2; exit 2;; esac
	$(BIN)/python bench/all.py $(BENCH_ARGS)

clean:
	rm -rf .run staticfiles
