# The two commands of the README:
#   make course   builds the course: the student release in exercises/ and the executed book in book/_build/html
#   make test     runs the test suite (what CI runs)
# Both create or refresh the virtual environment .venv with the pinned versions of requirements.txt.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: course release book test bench clean

course: release book

release: $(STAMP)
	$(BIN)/tfdl release --all

book: $(STAMP)
	$(BIN)/jupyter-book build book --warningiserror --nitpick --keep-going

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

$(STAMP): requirements.txt pyproject.toml package.json package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	npm ci --no-audit --no-fund --silent
	touch $(STAMP)

clean:
	rm -rf $(VENV) node_modules book/_build course_work
