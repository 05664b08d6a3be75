# The README's two commands: `make demo` (set up and run everything locally) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export LOCAL_DEV ?= 1

.PHONY: setup demo test lint format bench clean

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
	$(BIN)/python manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=devshop.settings $(BIN)/python manage.py makemigrations devshop --check --dry-run

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python bench/webhooks.py

clean:
	rm -rf .run staticfiles
