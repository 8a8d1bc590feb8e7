# Quick start: `make demo` (set up, then verify speakers in the bundled example audio) and
# `make test` (set up, then run the test suite). Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of torch; a bare `torch` would pull a multi-GB CUDA build.
TORCH_PIN := torch==2.13.0
# A torch wheel index to install TORCH_PIN from, for a CUDA build (README, GPU / CUDA), e.g.
# `make setup TORCH_INDEX=https://download.pytorch.org/whl/cu128`; empty: the wheel pip finds.
TORCH_INDEX ?=
STAMP := $(VENV)/.installed

# Debian packages the test suite uses: chromium (the interactive diarisation page is tested in a
# real headless browser), ffmpeg (m4a/aac input) and espeak-ng (phonemes for spk clone).
# Installed when missing and we are root; otherwise those tests skip.
TEST_DEBS := chromium ffmpeg espeak-ng

.PHONY: setup system-deps demo test bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH_PIN)
	# Resemblyzer carries the pretrained GE2E weights; --no-deps because its own requirements
	# pull webrtcvad, which fails to import on current setuptools (webrtcvad-wheels replaces it).
	$(BIN)/python -m pip install --quiet --no-deps resemblyzer==0.1.4
	$(BIN)/python -m pip install --quiet -e '.[test,clone,ui]'
	# The 54 official Kokoro voices for spk clone, from the npm package kokoro-js (sha256-checked,
	# cached beside the Kokoro model). Never fails the setup: without npm or the registry, spk clone
	# speaks with the 5 packaged voices.
	$(BIN)/python -m speakembed.models.engines.kokoro_voices fetch || echo "note: spk clone will use the 5 packaged Kokoro voices; install npm and run $(BIN)/python -m speakembed.models.engines.kokoro_voices fetch for all 54"
	touch $(STAMP)

demo: setup
	$(BIN)/spk verify examples/audio/slt_1.flac examples/audio/slt_2.flac
	$(BIN)/spk verify examples/audio/slt_1.flac examples/audio/awb_1.flac
	mkdir -p out
	$(BIN)/spk embed examples/audio --out out/examples --quiet
	$(BIN)/spk verify --trials examples/trials.txt --embeddings out/examples --out out/examples/scores.parquet

system-deps:
	@missing=""; for p in $(TEST_DEBS); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "not installing$$missing (needs root and apt-get): the tests that need them will skip"; fi

test: setup system-deps
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/embed_speed.py
	$(BIN)/python benchmarks/diarise.py
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/clone_speed.py

clean-venv:
	rm -rf $(VENV)
