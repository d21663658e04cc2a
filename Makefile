# `make run` and `make test` each create .venv on a fresh machine and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench i18n clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 'setuptools>=77'
	$(BIN)/pip install --quiet -e '.[dev,openai,dialogflow,redis,kb,otel]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/botkit init
	$(BIN)/botkit serve

test: $(STAMP)
	$(BIN)/ruff check botkit bots tests bench
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check botkit bots tests bench

# After changing a marked string (ctx.t, ctx.t_agents, N_): extract, merge into each language, compile the .mo.
i18n: $(STAMP)
	$(BIN)/pybabel extract -w 120 -k t -k t_agents -k N_ --sort-by-file --project botkit \
		-o botkit/locales/botkit.pot botkit bots
	$(BIN)/pybabel update -w 120 -D botkit -i botkit/locales/botkit.pot -d botkit/locales
	$(BIN)/pybabel compile -D botkit -d botkit/locales

bench: $(STAMP)
	$(BIN)/python bench/ack.py

clean:
	rm -rf $(VENV) botkit.db botkit.db-wal botkit.db-shm botkit.db.*.lock
