# `make run` and `make test` each create .venv on a fresh machine and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,openai,dialogflow,redis]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/botkit init
	$(BIN)/botkit serve

test: $(STAMP)
	$(BIN)/ruff check botkit bots tests bench
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check botkit bots tests bench

bench: $(STAMP)
	$(BIN)/python bench/ack.py

clean:
	rm -rf $(VENV) botkit.db botkit.db-wal botkit.db-shm
