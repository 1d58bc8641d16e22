# The papers' study as file targets: every run is results/<study>/<run>/seed<N>/results.json, written only when
# the run ends, so a finished run is never redone and an interrupted pipeline resumes where it stopped.
# `make -n quick` shows the plan. Overrides: EPOCHS= MODEL= SEEDS="0 1 2" DATASET=fake PYTHON=python3.

PYTHON ?= .venv/bin/python
# The virtual environment is a file target, built on first use; PYTHON=python3 skips it.
ENV := $(if $(filter .venv/bin/python,$(PYTHON)),.venv/installed,)
SEEDS ?= 0

.PHONY: install test lint quick fashion-mnist cifar10 cifar100 bench clean study

install: $(ENV)

.venv/installed: requirements.txt
	python3 -m venv .venv
	.venv/bin/pip install --upgrade pip
	.venv/bin/pip install -r requirements.txt
	touch $@

test: $(ENV)
	$(PYTHON) -c 'import torch; print("torch", torch.__version__, "on", "cuda" if torch.cuda.is_available() else "cpu")'
	$(PYTHON) -m pytest -q tests

lint: $(ENV)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

bench: $(ENV)
	$(PYTHON) bench.py

# --- the four studies, one target per dataset -------------------------------------------------------------
# Each calls `make study` with its dataset, network, epochs, extra train.py flags and λ grids.
quick:
	@$(MAKE) --no-print-directory study STUDY=quick DATA=fashion-mnist MODEL=$(or $(MODEL),cnn) EPOCHS=$(or $(EPOCHS),12) \
	  EXTRA='--subset 4000 --test-subset 1000 --batch-size 64 --lr 0.1 --rlp-head shared' GRL_LAMS='0.1 1 10' REG_LAMS='1 10 100'

fashion-mnist:
	@$(MAKE) --no-print-directory study STUDY=fashion-mnist DATA=fashion-mnist MODEL=$(or $(MODEL),wrn16_4) EPOCHS=$(or $(EPOCHS),15) \
	  EXTRA='' GRL_LAMS='0.01 0.1 1 10' REG_LAMS='1 10 100 1000 10000'

cifar10 cifar100:
	@$(MAKE) --no-print-directory study STUDY=$@ DATA=$@ MODEL=$(or $(MODEL),wrn16_4) EPOCHS=$(or $(EPOCHS),30) \
	  EXTRA='' GRL_LAMS='0.01 0.1 1 10' REG_LAMS='1 10 100 1000 10000'

# --- one study (called by the targets above) ---------------------------------------------------------------
FAKE := $(filter fake,$(DATASET))
DIR := results/$(STUDY)$(if $(FAKE),-fake)
DATA_FLAGS := $(if $(FAKE),--dataset fake --fake-like $(DATA),--dataset $(DATA))
COMMON = $(DATA_FLAGS) --model $(MODEL) --epochs $(EPOCHS) --taps all $(EXTRA)

# The regularizers, each alone and all together; `none` is also λ = 0 of both unlearning sweeps.
FLAGS_none      := --weight-decay 0 --no-augment
FLAGS_wd        := --weight-decay 5e-4 --no-augment
FLAGS_dropout   := --weight-decay 0 --no-augment --dropout 0.3
FLAGS_augment   := --weight-decay 0 --augment
FLAGS_smoothing := --weight-decay 0 --no-augment --label-smoothing 0.1
FLAGS_all       := --weight-decay 5e-4 --augment --dropout 0.3 --label-smoothing 0.1
REGULARIZERS := none wd dropout augment smoothing all
UNLEARNING = $(addprefix grl-,$(GRL_LAMS)) $(addprefix reg-,$(REG_LAMS))
# grl-0.1 -> --unlearn grl --lam 0.1 on top of the unregularized run
flags = $(or $(FLAGS_$(1)),$(FLAGS_none) --unlearn $(firstword $(subst -, ,$(1))) --lam $(patsubst grl-%,%,$(patsubst reg-%,%,$(1))))
seeded = $(foreach r,$(1),$(foreach s,$(SEEDS),$(DIR)/$(r)/seed$(s)/$(2)))

RUNS = $(call seeded,$(REGULARIZERS) $(UNLEARNING),results.json)
PROBES = $(call seeded,none all $(UNLEARNING),probe.json)

study: $(DIR)/report.md

$(DIR)/report.md: $(RUNS) $(PROBES) report.py
	$(PYTHON) report.py $(DIR)

# $* is <run>/seed<N>
$(DIR)/%/results.json: | $(ENV)
	$(PYTHON) train.py $(COMMON) $(call flags,$(patsubst %/,%,$(dir $*))) --seed $(patsubst seed%,%,$(notdir $*)) --out $(@D)

$(DIR)/%/probe.json: $(DIR)/%/results.json
	$(PYTHON) metrics.py probe $(@D)

clean:
	rm -rf results runs .pytest_cache __pycache__ tests/__pycache__

# --- related systems under label noise (issue 9): `make noise` (CPU), `make noise-cifar10` (GPU) -----------
# Class-label noise 0.4 and one run per system and setting: cross-entropy (ce), the robust log loss (rll-α),
# LIMIT (limit-β), the seed's unlearning (reg-λ, grl-λ), confusion unlearning (confusion-λ), ce with turn-over
# dropout (tod); plus ce and rll on clean (p0-) and fully random (p1-) class labels for the RLL claim.
# Every run is results/<study>/<run>/seed<N>/results.json; the label-noise runs are probed (probe.json);
# noise_report.py writes results/<study>/report.md and noise.png. EPOCHS= and MODEL= change the folder name.
.PHONY: noise noise-cifar10 noise-study

noise:
	@$(MAKE) --no-print-directory noise-study NOISE_NAME=noise NOISE_DATA=fashion-mnist \
	  NOISE_MODEL=$(or $(MODEL),cnn) NOISE_EPOCHS=$(or $(EPOCHS),30) \
	  NOISE_EXTRA='--subset 2000 --test-subset 1000 --batch-size 64 --lr 0.05 --rlp-head shared --weight-decay 0 --no-augment'

noise-cifar10:
	@$(MAKE) --no-print-directory noise-study NOISE_NAME=noise-cifar10 NOISE_DATA=cifar10 \
	  NOISE_MODEL=$(or $(MODEL),wrn16_4) NOISE_EPOCHS=$(or $(EPOCHS),30) NOISE_EXTRA=''

NOISE_RUNS ?= ce rll-0.1 rll-1 limit-0 limit-1 reg-1 reg-10 grl-0.1 grl-1 confusion-1 confusion-10 tod
NOISE_LABEL_RUNS ?= p0-ce p0-rll-0.1 p1-ce p1-rll-0.1

ifneq ($(NOISE_NAME),)
NOISE_DIR := results/$(NOISE_NAME)$(if $(filter fake,$(DATASET)),-fake)$(if $(MODEL),-$(MODEL))$(if $(EPOCHS),-e$(EPOCHS))
NOISE_COMMON = $(if $(filter fake,$(DATASET)),--dataset fake --fake-like $(NOISE_DATA),--dataset $(NOISE_DATA)) \
  --model $(NOISE_MODEL) --epochs $(NOISE_EPOCHS) --label-noise 0.4 $(NOISE_EXTRA)
# <system>-<value> -> flags; p0-<run> / p1-<run>: <run> on clean / fully random class labels
noise_kind = $(firstword $(subst -, ,$(1)))
noise_value = $(patsubst $(call noise_kind,$(1))-%,%,$(1))
NOISE_ce :=
NOISE_tod := --tod
NOISE_rll = --loss rll --rll-alpha $(1)
NOISE_limit = --limit --limit-beta $(1)
NOISE_reg = --unlearn reg --lam $(1)
NOISE_grl = --unlearn grl --lam $(1)
NOISE_confusion = --unlearn confusion --lam $(1)
noise_system = $(call NOISE_$(call noise_kind,$(1)),$(call noise_value,$(1)))
noise_flags = $(if $(filter p0 p1,$(call noise_kind,$(1))),--label-noise $(patsubst p%,%,$(call noise_kind,$(1))) $(call noise_system,$(call noise_value,$(1))),$(call noise_system,$(1)))
noise_seeded = $(foreach r,$(1),$(foreach s,$(SEEDS),$(NOISE_DIR)/$(r)/seed$(s)/$(2)))

noise-study: $(NOISE_DIR)/report.md

$(NOISE_DIR)/report.md: $(call noise_seeded,$(NOISE_RUNS) $(NOISE_LABEL_RUNS),results.json) \
  $(call noise_seeded,$(NOISE_RUNS),probe.json) noise_report.py
	$(PYTHON) noise_report.py $(NOISE_DIR)

# $* is <run>/seed<N>
$(NOISE_DIR)/%/results.json: | $(ENV)
	$(PYTHON) train.py $(NOISE_COMMON) $(call noise_flags,$(patsubst %/,%,$(dir $*))) --seed $(patsubst seed%,%,$(notdir $*)) --out $(@D)

$(NOISE_DIR)/%/probe.json: $(NOISE_DIR)/%/results.json
	$(PYTHON) probe.py $(@D)
endif
