# The papers' study as file targets: every run is results/<study>/<run>/seed<N>/results.json, written
# only when the run ends, so a finished run is never redone and an interrupted pipeline resumes where
# it stopped. `make -n quick` shows the plan. Overrides: EPOCHS= MODEL= DATASET= SEEDS="0 1 2"
# PYTHON=python3; each override that changes what a run computes also changes the study's folder
# (results/quick-e3-resnet18/...), so a changed command never reuses old results.

PYTHON ?= .venv/bin/python
# The virtual environment is a file target, built on first use; PYTHON=python3 skips it.
ENV := $(if $(filter .venv/bin/python,$(PYTHON)),.venv/installed,)
SEEDS ?= 0

.PHONY: install lint test quick validate fashion-mnist cifar10 cifar100 bench clean study gpu-check example

install: $(ENV)

.venv/installed: requirements.txt
	python3 -m venv .venv
	.venv/bin/pip install --upgrade pip
	.venv/bin/pip install -r requirements.txt
	touch $@

lint: $(ENV)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

test: $(ENV)
	$(PYTHON) -c 'import torch; print("torch", torch.__version__, "on", "cuda" if torch.cuda.is_available() else "cpu")'
	$(PYTHON) -m pytest -q tests

bench: $(ENV)
	$(PYTHON) bench.py

# --- where a study goes: its name plus every override given -----------------------------------------
SUFFIX := $(if $(DATASET),-$(DATASET))$(if $(MODEL),-$(MODEL))$(if $(EPOCHS),-e$(EPOCHS))
# DATASET=fake: synthetic data shaped like the study's own; any other name replaces the data.
data_flags = $(if $(filter fake,$(DATASET)),--dataset fake --fake-like $(1),--dataset $(or $(DATASET),$(1)))

# --- the four studies, one target per dataset ---------------------------------------------------------
# quick: Fashion-MNIST, 2000 training images, the small CNN, on a 2-core CPU in under 10 minutes.
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
fashion-mnist cifar10 cifar100: $(ENV) gpu-check
	@$(MAKE) --no-print-directory study DIR=results/$@$(SUFFIX) FLAGS='$(GPU_FLAGS)' \
	  GRL_LAMS='0.01 0.1 1 10' REG_LAMS='1 10 100 1000 10000'

gpu-check: $(ENV)
	@$(PYTHON) -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || [ "$(CPU)" = 1 ] || { \
	  echo "make $(MAKECMDGOALS): no GPU visible. This study trains 16 WRN-16-4 runs (target: half an hour on one H100, unmeasured;" >&2; \
	  echo "  days on a CPU). Run 'make quick' for the CPU version, or 'make $(MAKECMDGOALS) CPU=1' to start anyway." >&2; \
	  exit 2; }

# --- one study (called by the targets above) ----------------------------------------------------------
# The regularizers, each alone and all together; `none` is also λ = 0 of both unlearning sweeps, and
# `memorize` the positive control (f trained on the random labels: the probe must read it).
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

RUNS = $(call seeded,$(REGULARIZERS) memorize $(UNLEARNING),results.json)
PROBES = $(RUNS:results.json=probe.json)

study: $(DIR)/report.md

$(DIR)/report.md: $(RUNS) $(PROBES) report.py
	$(PYTHON) report.py $(DIR) --seeds $(SEEDS)

# $* is <run>/seed<N>
$(DIR)/%/results.json: | $(ENV)
	$(PYTHON) train.py $(FLAGS) --taps all $(call flags,$(patsubst %/,%,$(dir $*))) --seed $(patsubst seed%,%,$(notdir $*)) --out $(@D)

%/probe.json: %/results.json
	$(PYTHON) probe.py $(@D)

# --- validation: the estimate against its controls and an independent measure -------------------------
# Settings: label noise p at n images per network, and sizes n at p = VALIDATE_SIZE_NOISE. Each setting
# trains one network per VALIDATE_HALVES entry on complementary halves (pairs 0 1, 2 3, ...) of a pool
# of 2n images (train.py --half j): the leave-out memorization of Feldman & Zhang and the probe's m
# come from the same networks. 25 runs of 30 epochs: about 20 minutes on 2 CPU cores (README).
VALIDATE_NOISES ?= 0 0.25 0.5 1
VALIDATE_N ?= 1000
VALIDATE_SIZES ?= 250 2000
VALIDATE_SIZE_NOISE ?= 0.25
VALIDATE_HALVES ?= 0 1 2 3
VDIR := results/validate$(SUFFIX)
VFLAGS = $(call data_flags,fashion-mnist) --model $(or $(MODEL),cnn) --epochs $(or $(EPOCHS),30) \
  --batch-size 64 --lr 0.05 --weight-decay 0 --no-augment --rlp-head shared --taps all --test-subset 1000
SETTINGS := $(foreach p,$(VALIDATE_NOISES),p$(p)-n$(VALIDATE_N)) \
  $(foreach n,$(VALIDATE_SIZES),p$(VALIDATE_SIZE_NOISE)-n$(n))
VRUNS := $(foreach s,$(SETTINGS),$(foreach j,$(VALIDATE_HALVES),$(VDIR)/$(s)/half$(j)/results.json)) \
  $(VDIR)/memorize-n$(VALIDATE_N)/half0/results.json
# p0.25-n250/half3 -> --label-noise 0.25 --subset 500 --half 3 --seed 3
vflags = $(if $(filter memorize-%,$(1)),--memorize --subset $$(( 2 * $(patsubst memorize-n%,%,$(1)) )),\
  --label-noise $(patsubst p%,%,$(firstword $(subst -n, ,$(1)))) --subset $$(( 2 * $(lastword $(subst -n, ,$(1))) )))

validate: $(VDIR)/report.md

$(VDIR)/report.md: $(VRUNS) $(VRUNS:results.json=probe.json) validate.py
	$(PYTHON) validate.py $(VDIR)

$(VDIR)/%/results.json: | $(ENV)
	$(PYTHON) train.py $(VFLAGS) $(call vflags,$(patsubst %/,%,$(dir $*))) --half $(patsubst half%,%,$(notdir $*)) --seed $(patsubst half%,%,$(notdir $*)) --out $(@D)

# --- the committed example reports (example/): what a clone shows without running anything ---------------
# `make example SEEDS="0 1 2"` is how example/ was made: the quick study over three seeds and the validation.
example: quick validate
	rm -rf example/quick example/validate && mkdir -p example/quick example/validate
	cp results/quick$(SUFFIX)/report.md results/quick$(SUFFIX)/*.png example/quick/
	cp $(VDIR)/report.md $(VDIR)/*.png $(VDIR)/validation.json example/validate/

clean:
	rm -rf results runs .pytest_cache __pycache__ tests/__pycache__

# --- several GPUs (README "Several GPUs", parallel.py) ------------------------------------------------------
# `make -j N <target>` trains N runs at once, one per GPU: every train.py and probe takes a GPU that no other
# run holds (a lock file per GPU) and waits while all are taken, so N may exceed the number of GPUs; runs
# started together download a dataset one at a time. Nothing here changes: the runs are already independent
# file targets. One run on N GPUs instead: .venv/bin/torchrun --standalone --nproc_per_node N train.py ...

# --- related systems under label noise (issue 9): `make noise` (CPU), `make noise-cifar10` (GPU) -----------
# Class-label noise 0.4 and one run per system and setting: cross-entropy (ce), the robust log loss (rll-α),
# LIMIT (limit-β), the seed's unlearning (reg-λ, grl-λ), confusion unlearning (confusion-λ), ce with turn-over
# dropout (tod); plus ce and rll on clean (p0-) and fully random (p1-) class labels for the RLL claim.
# Every run is results/<study>/<run>/seed<N>/results.json; the label-noise runs are probed (probe.json);
# noise_report.py writes results/<study>/report.md and noise.png. EPOCHS=, MODEL=, DATASET= name the folder.
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
NOISE_DIR := results/$(NOISE_NAME)$(SUFFIX)
NOISE_COMMON = $(call data_flags,$(NOISE_DATA)) \
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
