# kubegate: `make run` serves a cluster from ./.kubegate; `make test` runs the whole suite.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DATA ?= .kubegate
PORT ?= 6443

.PHONY: run test bench venv clean

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

run: venv
	@echo "export KUBECONFIG=$(abspath $(DATA))/admin.conf"
	$(BIN)/kubegate up --data-dir $(DATA) --secure-port $(PORT)

# pytest exits 5 when it collected no tests: that is a failure, not a green run.
test: venv
	$(BIN)/python -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected" >&2; exit 1; fi; exit $$rc

bench: venv
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(DATA)
