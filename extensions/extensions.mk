# The extensions' targets, included by the Makefile: validate, noise, noise-cifar10, measures, bench,
# student, check, test-versions, gpu-check, example, example-worked, example-measures, docs. Each
# extension's README says what it does.
# Extensions run as modules from the repository root: $(PYTHON) -m extensions.<name>.<script>.

.PHONY: validate noise noise-cifar10 noise-study bench example example-measures example-worked

# make -j N on a machine with several GPUs: every run takes a GPU no other run holds (multigpu/)
NGPUS := $(shell nvidia-smi -L 2>/dev/null | wc -l)
LAUNCH := $(if $(filter-out 0 1,$(NGPUS)),$(PYTHON) -m extensions.multigpu.claim_gpu)

bench: $(ENV)
	$(PYTHON) -m extensions.bench.bench

# --- validation: the estimate against its controls and an independent measure (validation/) ------
# Settings: label noise p at n images per network, and sizes n at p = VALIDATE_SIZE_NOISE. Network
# j of a setting trains on half j of a pool of 2n images: halves 2k and 2k+1 are complementary
# halves of pool k, drawn with --label-seed k (its own images, random labels and noise), and --seed j.
# Plus the positive control (--memorize) and the workshop paper's per-class heads at 5000 images.
# Time: about 20 minutes on 2 cores. VALIDATE_SIZES="250 2000" adds n = 2000 (4 min; make measures
# covers n = 1000 and 2000 with 32 networks), and the test accuracy column, which no estimate uses,
# is on 500 test images (its per-epoch pass cost 2 min).
VALIDATE_NOISES ?= 0 0.25 0.5 1
VALIDATE_N ?= 1000
VALIDATE_SIZES ?= 250
VALIDATE_SIZE_NOISE ?= 0.25
VALIDATE_HALVES ?= 0 1 2 3
VALIDATE_CONTROL_HALVES ?= 0 2
VALIDATE_PERCLASS ?= p0.25-n5000
VALIDATE_PERCLASS_EPOCHS ?= 15
VDIR := results/validate$(SUFFIX)
VFLAGS = $(call data_flags,fashion-mnist) --model $(or $(MODEL),cnn) --epochs $(or $(EPOCHS),30) \
  --batch-size 64 --lr 0.05 --weight-decay 0 --no-augment --rlp-head shared --taps all --test-subset 500
VSETTINGS := $(foreach p,$(VALIDATE_NOISES),p$(p)-n$(VALIDATE_N)) \
  $(foreach n,$(VALIDATE_SIZES),p$(VALIDATE_SIZE_NOISE)-n$(n))
VPER_CLASS := $(if $(VALIDATE_PERCLASS),$(addprefix perclass-,$(VALIDATE_PERCLASS)) \
  perclass-memorize-n$(lastword $(subst -n, ,$(VALIDATE_PERCLASS))))
VRUNS := $(foreach s,$(VSETTINGS),$(foreach j,$(VALIDATE_HALVES),$(VDIR)/$(s)/half$(j)/probe.json)) \
  $(foreach j,$(VALIDATE_CONTROL_HALVES),$(VDIR)/memorize-n$(VALIDATE_N)/half$(j)/probe.json) \
  $(foreach s,$(VPER_CLASS),$(foreach j,$(if $(findstring memorize,$(s)),0,0 1),$(VDIR)/$(s)/half$(j)/probe.json))
# perclass-p0.25-n5000 -> per-class heads; memorize-n1000 -> --memorize; p0.25-n250 -> --label-noise 0.25;
# and --subset 2n
vbase = $(patsubst perclass-%,%,$(1))
vflags = $(if $(filter perclass-%,$(1)),--rlp-head per-class --epochs $(VALIDATE_PERCLASS_EPOCHS)) \
  $(if $(findstring memorize,$(1)),--memorize,--label-noise $(patsubst p%,%,$(firstword $(subst -n, ,$(call vbase,$(1)))))) \
  --subset $$(( 2 * $(lastword $(subst -n, ,$(call vbase,$(1)))) ))

validate: $(VDIR)/report.md

VALIDATE_CODE := $(addprefix extensions/validation/,validate.py leaveout.py feature_control.py capacity.py)
$(VDIR)/report.md: $(VRUNS) $(VALIDATE_CODE) metrics.py | $(ENV)
	$(PYTHON) -m extensions.validation.validate $(VDIR)

# $* is <setting>/half<j>: half j of pool j/2, seed j
$(VDIR)/%/probe.json: metrics.py | $(ENV)
	rm -f $@
	j=$(patsubst half%,%,$(notdir $*)); $(LAUNCH) $(PYTHON) -m extensions.validation.train_half $(VFLAGS) \
	  $(call vflags,$(patsubst %/,%,$(dir $*))) --half $$j --seed $$j --label-seed $$(( j / 2 )) --out $(@D)

# --- related systems under label noise (related/): `make noise` (CPU), `make noise-cifar10` (GPU) --
# Class-label noise 0.4, one run per system and setting: cross-entropy (ce), the robust log loss
# (rll-α), LIMIT (limit-β), the seed's unlearning (reg-λ, grl-λ), confusion unlearning (confusion-λ),
# ce with turn-over dropout (tod); plus ce and rll on clean (p0-) and fully random (p1-) class labels.
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

$(NOISE_DIR)/report.md: $(call noise_seeded,$(NOISE_RUNS) $(NOISE_LABEL_RUNS),probe.json) \
  extensions/related/noise_report.py
	$(PYTHON) -m extensions.related.noise_report $(NOISE_DIR)

# $* is <run>/seed<N>
$(NOISE_DIR)/%/probe.json: metrics.py | $(ENV)
	rm -f $@
	$(LAUNCH) $(PYTHON) -m extensions.related.train_related $(NOISE_COMMON) \
	  $(call noise_flags,$(patsubst %/,%,$(dir $*))) $(call seed_flags,$(patsubst seed%,%,$(notdir $*))) --out $(@D)
endif

# --- does the number rank networks by their generalization gap? (measures/): `make measures` -------
# A grid over training-set size, label noise, weight decay and learning rate (2 values each), 2 seeds:
# 32 networks, Fashion-MNIST, the small CNN, each trained to a criterion as Jiang et al. 2020 do
# (an epoch's training cross-entropy ≤ MEASURES_LOSS) or to a maximum of MEASURES_EPOCHS epochs (the
# cosine schedule spans the maximum). Theirs is 0.01; on 2 CPU cores half the grid (lr 0.02) is
# still at 0.06 after 35 epochs, so the default is 0.1 within 30. Run names carry the values:
# n1000-p0.2-wd0.0005-lr0.1. `make explain`: a_train predicted from the effective dimension
# for every network of make quick, validate and noise.
.PHONY: measures explain
MEASURES_LOSS ?= 0.1
MEASURES_EPOCHS := $(or $(EPOCHS),30)
MEASURES_DIR := results/measures$(SUFFIX)$(if $(filter-out 0.1,$(MEASURES_LOSS)),-l$(MEASURES_LOSS))
MEASURES_SEEDS ?= 0 1
MEASURES_GRID := $(foreach n,1000 2000,$(foreach p,0 0.2,$(foreach w,0 0.0005,$(foreach l,0.02 0.1,n$(n)-p$(p)-wd$(w)-lr$(l)))))
MEASURES_FLAGS = $(call data_flags,fashion-mnist) --model $(or $(MODEL),cnn) --epochs $(MEASURES_EPOCHS) \
  --stop-at-loss $(MEASURES_LOSS) --test-subset 2000 --batch-size 64 --rlp-head shared --taps all \
  --no-augment
# n1000-p0.2-wd0-lr0.1 -> --subset 1000 --label-noise 0.2 --weight-decay 0 --lr 0.1
measure_value = $(patsubst $(2)%,%,$(filter $(2)%,$(subst -, ,$(1))))
measure_flags = --subset $(call measure_value,$(1),n) --label-noise $(call measure_value,$(1),p) \
  --weight-decay $(call measure_value,$(1),wd) --lr $(call measure_value,$(1),lr)

measures: $(MEASURES_DIR)/report.md

$(MEASURES_DIR)/report.md: $(foreach r,$(MEASURES_GRID),$(foreach s,$(MEASURES_SEEDS),$(MEASURES_DIR)/$(r)/seed$(s)/probe.json)) \
  extensions/measures/measures.py extensions/measures/explain.py
	$(PYTHON) -m extensions.measures.measures $(MEASURES_DIR)

# $* is <run>/seed<N>
$(MEASURES_DIR)/%/probe.json: metrics.py | $(ENV)
	rm -f $@
	$(LAUNCH) $(PYTHON) train.py $(MEASURES_FLAGS) $(call measure_flags,$(patsubst %/,%,$(dir $*))) \
	  $(call seed_flags,$(patsubst seed%,%,$(notdir $*))) --out $(@D)

explain: quick validate noise
	$(PYTHON) -m extensions.measures.explain results/quick$(SUFFIX) $(VDIR) results/noise$(SUFFIX) \
	  --out results/explain$(SUFFIX)

# --- the committed example reports (example/): what a clone shows without running anything ----------
# `make example SEEDS="0 1 2"` is how example/ was made.
example: quick validate
	rm -rf example/quick example/validate && mkdir -p example/quick example/validate
	cp results/quick$(SUFFIX)/report.md results/quick$(SUFFIX)/*.png example/quick/
	cp $(VDIR)/report.md $(VDIR)/*.png $(VDIR)/validation.json example/validate/

# example/worked: the README's worked example, its two runs (seed 0) and the lines they end with
WORKED := --dataset fake --fake-like fashion-mnist --subset 512 --test-subset 512 --batch-size 64 \
  --lr 0.1 --weight-decay 0 --no-augment --rlp-head shared --epochs 10
example-worked: $(ENV)
	rm -rf results/worked example/worked && mkdir -p results/worked example/worked
	$(PYTHON) train.py $(WORKED) --out results/worked/plain > results/worked/plain.log
	$(PYTHON) train.py $(WORKED) --memorize --out results/worked/memorize > results/worked/memorize.log
	for r in plain memorize; do tail -n 2 results/worked/$$r.log >> example/worked/output.txt; \
	  cp results/worked/$$r/probe.json example/worked/$$r-probe.json; done

# example/measures and example/explain: `make example-measures` after make measures and make explain
example-measures: measures explain
	rm -rf example/measures example/explain && mkdir -p example/measures example/explain
	cp $(MEASURES_DIR)/report.md $(MEASURES_DIR)/*.png $(MEASURES_DIR)/measures.json example/measures/
	cp results/explain$(SUFFIX)/report.md results/explain$(SUFFIX)/explain.png example/explain/

# --- the GPU machine (gpu/): its versions tested here, and one script that measures everything there --
# test-versions: the test suite in a venv with the GPU machines' Python 3.12, torch 2.11, torchvision
# 0.26 (from the package registry; python3 if there is no python3.12). gpu-check: on a lent GPU,
# with the machine's own python3: make gpu-check PYTHON=python3 (TINY=1: CPU sizes, to try it).
.PHONY: test-versions gpu-check
GPU_PYTHON ?= $(shell command -v python3.12 || command -v python3)

.venv-gpu-versions/installed:
	$(GPU_PYTHON) -m venv .venv-gpu-versions
	.venv-gpu-versions/bin/pip install --upgrade pip
	.venv-gpu-versions/bin/pip install torch==2.11.0 torchvision==0.26.0 numpy matplotlib tqdm pytest
	touch $@

test-versions: .venv-gpu-versions/installed
	.venv-gpu-versions/bin/python -c 'import sys, torch, torchvision; print("Python", sys.version.split()[0], "torch", torch.__version__, "torchvision", torchvision.__version__)'
	.venv-gpu-versions/bin/python -m pytest -q tests extensions

gpu-check: $(ENV)
	$(PYTHON) -m extensions.gpu.gpu_check $(if $(TINY),--tiny)

# --- teaching (exercises/): a student copy, and one exercise's check ----------------------------------
# make student DIR=path EX=1,2,3: a copy with those exercises' functions blanked (default: all)
.PHONY: student check reuse-venv
student: $(ENV)
	@[ -n "$(DIR)" ] || { echo 'make student: give a new folder, e.g. make student DIR=../rlp-student' >&2; exit 2; }
	$(PYTHON) -m extensions.exercises.student $(DIR) $(if $(EX),--exercises $(EX))

# make reuse-venv FROM=path/.venv: a .venv of this folder's own that reads FROM's packages (a student
# copy on the machine that made it: no download); it keeps working when this folder moves
reuse-venv:
	@[ -x "$(FROM)/bin/python" ] || { echo 'make reuse-venv: give an environment, e.g. FROM=../rlp/.venv' >&2; exit 2; }
	rm -rf .venv
	$(FROM)/bin/python -m venv --without-pip .venv
	$(FROM)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > .venv/reused.pth
	mv .venv/reused.pth "$$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/"
	.venv/bin/python -c 'import torch, torchvision, pytest, ruff' && touch .venv/installed

check: $(ENV)
	@[ -f extensions/exercises/ex$(EX)/check_ex$(EX).py ] || { echo 'make check: give an exercise, e.g. make check EX=1 (1 to 7)' >&2; exit 2; }
	$(PYTHON) -m pytest -q -p no:cacheprovider extensions/exercises/ex$(EX)/check_ex$(EX).py

# make autograder OUT=dir [EX=1,2,3]: dir/autograder.zip for Gradescope (exercises/autograder/; the
# solution is inside: upload it, never hand it out). Grade one submission here as Gradescope does:
# AUTOGRADER_ROOT=dir PYTHON=.venv/bin/python dir/source/run_autograder (TEACHER.md).
.PHONY: autograder
autograder: $(ENV)
	@[ -n "$(OUT)" ] || { echo 'make autograder: give a folder, e.g. make autograder OUT=../grader' >&2; exit 2; }
	$(PYTHON) -m extensions.exercises.autograder.bundle $(OUT) $(if $(EX),--exercises $(EX))

# --- reading beside the papers (docs/): `make docs`, DOCS=dir elsewhere --------------------------------
# The site needs markdown-it-py, latex2mathml and Pygments and none of torch, so they go into a venv
# of their own (.venv-docs, seconds to build): a clean clone builds the site without building .venv.
# DOCS_PYTHON=python3 uses an environment that has them.
.PHONY: docs
DOCS ?= docs
DOCS_PYTHON ?= .venv-docs/bin/python
DOCS_ENV := $(if $(filter .venv-docs/bin/python,$(DOCS_PYTHON)),.venv-docs/installed,)

.venv-docs/installed: extensions/docs/requirements.txt
	python3 -m venv .venv-docs
	.venv-docs/bin/pip install -q -r extensions/docs/requirements.txt
	touch $@

docs: $(DOCS_ENV)
	$(DOCS_PYTHON) -m extensions.docs.build --out $(DOCS)
