# The README's two commands: `make demo` (set up and run everything locally) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export LOCAL_DEV ?= 1

.PHONY: setup demo test lint format bench bench-scale bench-insights bench-tracking bench-estimates bench-returns bench-notifications bench-load bench-all clean

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

# The admin's home for a shop with 1M orders (builds/reuses the skewed scale dataset):
# DATABASE_URL=postgres://postgres@127.0.0.1:5432/wta make bench-insights
bench-insights: setup
	$(BIN)/python bench/insights.py $(BENCH_ARGS)

# Need PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/test make bench-tracking
bench-tracking: setup
	$(BIN)/python bench/tracking.py

# Delivery estimates' accuracy on a generated history (PostgreSQL; its own scratch database):
# DATABASE_URL=postgres://postgres@127.0.0.1:5432/wta make bench-estimates
bench-estimates: setup
	$(BIN)/python bench/estimates.py $(BENCH_ARGS)

# PostgreSQL too; starts its own devshop: DATABASE_URL=postgres://…/postgres make bench-returns
bench-returns: setup
	$(BIN)/python bench/returns.py

bench-notifications: setup
	$(BIN)/python bench/notifications.py

# 50,000 signed webhooks against the Procfile's web and 2 workers, then the drain (PostgreSQL;
# a quick run: BENCH_ARGS="--count 2000").
bench-load: setup
	$(BIN)/python bench/load.py $(BENCH_ARGS)

# Every bench above on PostgreSQL, every figure of issue 12 in one table: bench/out/results.md.
# The 1M-order scale dataset is built once per DATABASE_URL (~23 min) and reused after that;
# a quick run on a small copy: BENCH_ARGS="--orders 20000 --scale 0.1 --sample 100
# --burst 1000 --steady-seconds 15 --scaling-orders 300 --load-count 2000 --parcels 5000"
# DATABASE_URL=postgres://postgres@127.0.0.1:5432/wta make bench-all (knobs: bench/all.py --help)
bench-all: setup
	@case "$$DATABASE_URL" in postgres://*|postgresql://*) ;; \
	  *) echo "bench-all needs PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> make bench-all" >&2; exit 2;; esac
	$(BIN)/python bench/all.py $(BENCH_ARGS)

clean:
	rm -rf .run staticfiles
