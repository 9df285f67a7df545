# cvsuite: `make demo` and `make test` set everything up on a fresh machine.
# The venv is (re)installed only when requirements.txt, constraints.txt, pyproject.toml or
# tools/install_detectron2.py change.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DEPS_HASH := $(shell cat requirements.txt requirements-nodeps.txt constraints.txt pyproject.toml tools/install_detectron2.py tools/link_libusb.py | sha256sum | cut -c1-16)
STAMP  := $(VENV)/.installed-$(DEPS_HASH)
PIP    := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: install demo test bench bench-mot bench-hand bench-points bench-scrl clean-venv

install: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt constraints.txt pyproject.toml tools/install_detectron2.py tools/link_libusb.py
	@echo "== installing cvsuite into $(VENV) (torch 2.14.1 pinned through constraints.txt)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@rm -f $(VENV)/.installed-*
	$(PIP) install -q -c constraints.txt -r requirements.txt
	$(PIP) install -q -c constraints.txt --no-deps -r requirements-nodeps.txt
	$(PIP) install -q -c constraints.txt --no-deps --no-build-isolation -e .
	$(BIN)/python tools/link_libusb.py       # open3d importable by any script in the venv
	$(BIN)/python tools/install_detectron2.py  # detectron2 (pb1-detectron2 sdist, patched; see the script)
	@touch $@

demo: install
	$(BIN)/cvsuite demo --out demo-output

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m evaluation.bench_losses --threads 2 --repeats 20
	$(BIN)/python -m evaluation.bench_pretrain
	$(BIN)/python -m evaluation.bench_sr
	$(MAKE) bench-mot
	$(MAKE) bench-hand
	$(MAKE) bench-points
	$(MAKE) bench-scrl

# MOT: synthetic train/val/test + TUD detections, 2 seeds x (i2t, i2i) embeddings, tuning on the
# validation split, then ours next to SORT / ByteTrack / OC-SORT (pypi trackers) in one run (~10 min).
MOT_RUNS ?= runs/mot_bench
bench-mot: install
	$(BIN)/python -m evaluation.bench_mot --work $(MOT_RUNS) --markdown

# Hand: synthetic HanCo sets, MoCo pretraining (a, a+b, a+b+c), few-label fine-tuning, throughput (~15 min on 2 loaded cores).
bench-hand: install
	$(BIN)/python -m evaluation.bench_hand --out runs/hand_bench --markdown

# Points: seed sweep (scratch / SCL / 2 ablations), --parts, DGCNN speed, kNN, infer RSS (<= 15 min on 2 cores).
bench-points: install
	$(BIN)/python evaluation/bench_points.py

# SCRL: synthetic scenes, BYOL/SCRL pretraining, Faster R-CNN fine-tuning, COCOeval (~15 min on 2 cores).
bench-scrl: install
	$(BIN)/python -m evaluation.bench_scrl --markdown

clean-venv:
	rm -rf $(VENV)
