# The papers' study as file targets. Every run is results/<study>/<run>/seed<N>/, and its last file,
# probe.json (the controls), is the target: a finished run is never redone, an interrupted pipeline
# resumes where it stopped, and a changed estimator (metrics.py) re-measures every run without
# retraining it. `make -n quick` shows the plan. Overrides: EPOCHS= MODEL= DATASET= SEEDS="0 1 2"
# PYTHON=python3; each override that changes what a run computes also names the study's folder
# (results/quick-fake-resnet18-e3/), so a changed command never reuses old results.

PYTHON ?= .venv/bin/python
# The virtual environment is a file target, built on first use; PYTHON=python3 skips it.
ENV := $(if $(filter .venv/bin/python,$(PYTHON)),.venv/installed,)
SEEDS ?= 0
# what runs a training command: nothing here; extensions/extensions.mk sets it on a machine with
# several GPUs (each run then takes a GPU of its own)
LAUNCH :=

.PHONY: install lint test test-all test-core quick fashion-mnist cifar10 cifar100 requires-gpu study clean

install: $(ENV)

.venv/installed: requirements.txt
	python3 -m venv .venv
	.venv/bin/pip install --upgrade pip
	.venv/bin/pip install -r requirements.txt
	touch $@

lint: $(ENV)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

# test: every test but the slow ones (kills and restarts); test-all: those too; test-core: the
# core's own, to run after every edit (each target's time: README, Commands)
test: $(ENV)
	$(PYTHON) -c 'import torch; print("torch", torch.__version__, "on", "cuda" if torch.cuda.is_available() else "cpu")'
	$(PYTHON) -m pytest -q -m 'not slow' tests extensions

test-all: $(ENV)
	$(PYTHON) -m pytest -q tests extensions

test-core: $(ENV)
	$(PYTHON) -m pytest -q -m 'not slow' tests

# --- where a study goes: its name plus every override given -------------------------------------
SUFFIX := $(if $(DATASET),-$(DATASET))$(if $(MODEL),-$(MODEL))$(if $(EPOCHS),-e$(EPOCHS))
# DATASET=fake: synthetic data shaped like the study's own; any other name replaces the data.
data_flags = $(if $(filter fake,$(DATASET)),--dataset fake --fake-like $(1),--dataset $(or $(DATASET),$(1)))

# --- the studies, one target per dataset ----------------------------------------------------------
# quick: Fashion-MNIST, 2000 training images, the small CNN, on a 2-core CPU (time: README).
# Shared heads: 2000 samples per head against 2D = 128 (per-class heads would see 200: capacity).
QUICK_FLAGS = $(call data_flags,fashion-mnist) --model $(or $(MODEL),cnn) --epochs $(or $(EPOCHS),20) \
  --subset 2000 --test-subset 1000 --batch-size 64 --lr 0.05 --rlp-head shared
quick: $(ENV)
	@$(MAKE) --no-print-directory study DIR=results/quick$(SUFFIX) FLAGS='$(QUICK_FLAGS)' \
	  GRL_LAMS='0.1 1' REG_LAMS='1 10'

# The GPU studies: the papers' WRN-16-4 on the full training set, per-class heads (5000-6000 samples
# per head against 2D = 512). They stop on a CPU, where they would take days, unless CPU=1.
GPU_FLAGS = $(call data_flags,$@) --model $(or $(MODEL),wrn16_4) \
  --epochs $(or $(EPOCHS),$(if $(filter fashion-mnist,$@),15,30))
fashion-mnist cifar10 cifar100: $(ENV) requires-gpu
	@$(MAKE) --no-print-directory study DIR=results/$@$(SUFFIX) FLAGS='$(GPU_FLAGS)' \
	  GRL_LAMS='0.01 0.1 1 10' REG_LAMS='1 10 100 1000 10000'

requires-gpu: $(ENV)
	@$(PYTHON) -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || [ "$(CPU)" = 1 ] || { \
	  echo "make $(MAKECMDGOALS): no GPU visible. This study trains 16 WRN-16-4 runs (target: half an hour on one H100," >&2; \
	  echo "  unmeasured; days on a CPU). Run 'make quick' for the CPU version, or 'make $(MAKECMDGOALS) CPU=1' anyway." >&2; \
	  exit 2; }

# --- one study (called by the targets above) --------------------------------------------------------
# The regularizers, each alone and all together; `none` is also λ = 0 of both unlearning sweeps, and
# `memorize` the positive control (f trained on the random labels: a fresh head must read them).
FLAGS_none      := --weight-decay 0 --no-augment
FLAGS_wd        := --weight-decay 5e-4 --no-augment
FLAGS_dropout   := --weight-decay 0 --no-augment --dropout 0.3
FLAGS_augment   := --weight-decay 0 --augment
FLAGS_smoothing := --weight-decay 0 --no-augment --label-smoothing 0.1
FLAGS_all       := --weight-decay 5e-4 --augment --dropout 0.3 --label-smoothing 0.1
FLAGS_memorize  := --weight-decay 0 --no-augment --memorize
REGULARIZERS := none wd dropout augment smoothing all
UNLEARNING = $(addprefix grl-,$(GRL_LAMS)) $(addprefix reg-,$(REG_LAMS))
# grl-0.1 -> --unlearn grl --lam 0.1 on top of the unregularized run
flags = $(or $(FLAGS_$(1)),$(FLAGS_none) --unlearn $(firstword $(subst -, ,$(1))) --lam $(patsubst grl-%,%,$(patsubst reg-%,%,$(1))))
seeded = $(foreach r,$(1),$(foreach s,$(SEEDS),$(DIR)/$(r)/seed$(s)/$(2)))
# seed N: initialization, data order and augmentation (--seed), and random labels and subset
# (--label-seed), so that networks differ in everything a rerun could change
seed_flags = --seed $(1) --label-seed $(1)

study: $(DIR)/report.md

$(DIR)/report.md: $(call seeded,$(REGULARIZERS) memorize $(UNLEARNING),probe.json) \
  extensions/report/report.py
	$(PYTHON) -m extensions.report.report $(DIR) --seeds $(SEEDS)

# $* is <run>/seed<N>: train (or resume) the run, then measure its controls into probe.json
$(DIR)/%/probe.json: metrics.py | $(ENV)
	rm -f $@
	$(LAUNCH) $(PYTHON) train.py $(FLAGS) --taps all $(call flags,$(patsubst %/,%,$(dir $*))) \
	  $(call seed_flags,$(patsubst seed%,%,$(notdir $*))) --out $(@D)

clean:
	rm -rf results runs .pytest_cache __pycache__ tests/__pycache__

# The extensions' targets: validate, noise, noise-cifar10, measures, bench, student, check,
# test-versions, gpu-check, example, docs (extensions/README.md)
include extensions/extensions.mk
