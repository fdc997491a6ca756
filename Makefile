# The two commands of the README:
#   make course   builds the course: the student release in exercises/ and the executed book in book/_build/html
#   make test     runs the test suite (what CI runs)
# Both create or refresh the virtual environment .venv with the pinned versions of requirements.txt.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: course release book test system bench clean

course: release book

release: $(STAMP)
	$(BIN)/tfdl release --all

book: $(STAMP)
	$(BIN)/jupyter-book build book --warningiserror --nitpick --keep-going

test: $(STAMP) system
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=25

# Debian packages the tests need: chromium and chromium-driver (the browser tests of the book, tests/test_site.py)
# and bubblewrap (isolation of student code, tests/test_sandbox.py and the grading tests). Installed with apt-get
# when this runs as root; otherwise it names the command and stops before any test runs.
SYSTEM_PACKAGES := chromium chromium-driver bubblewrap
system:
	@missing=""; for c in chromium chromedriver bwrap; do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make test needs the Debian packages $(SYSTEM_PACKAGES); missing:$$missing"; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -qq $(SYSTEM_PACKAGES) || (apt-get update -qq && apt-get install -y -qq $(SYSTEM_PACKAGES))) >/dev/null \
	      || { echo "could not install them: run  sudo apt-get install $(SYSTEM_PACKAGES)"; exit 1; }; \
	  else echo "install them first:  sudo apt-get install $(SYSTEM_PACKAGES)"; exit 1; fi; \
	fi

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
