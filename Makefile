# The two commands of the README. Each sets up what it needs on first use and
# skips what is already done: the venv is rebuilt only when requirements.txt changes,
# and Snakemake reruns only what is missing or out of date.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
CORES ?= all

.PHONY: demo test setup system-deps

demo: setup
	snakemake --cores $(CORES)

test: setup
	pytest

setup: $(STAMP) system-deps

$(STAMP): requirements.txt
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# bedtools is a Debian package (pybedtools calls it); install it only when missing.
system-deps:
	@command -v bedtools >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bedtools; }
