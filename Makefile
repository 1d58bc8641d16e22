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
	$(PYTHON) probe.py $(@D)

clean:
	rm -rf results runs .pytest_cache __pycache__ tests/__pycache__
