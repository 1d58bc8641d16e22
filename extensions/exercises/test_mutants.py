"""The teacher's test of the code checks: for every function a student writes, plausible wrong
versions and cheats, each put in place of the reference alone; the exercise's check must fail on
every one of them, and pass on the reference. A check that passes a mutant here would pass a
student's wrong work."""

import collections
import importlib
import inspect
import math

import pytest
import torch

import data
import metrics
import model
import regularizer
import train
from extensions.exercises.student import BLANKS

# --- exercise 1: data.draw_random_labels ----------------------------------------------------------


def reseeded_each_call(n, K, generator):  # every draw starts over: test labels = training prefix
    return torch.randint(K, (n,), generator=torch.Generator().manual_seed(generator.initial_seed()))


def alternating(n, K, generator):  # uniform and seeded, but a fixed pattern
    offset = torch.randint(K, (1,), generator=generator)
    return (torch.arange(n) + offset) % K


def sorted_labels(n, K, generator):
    return torch.randint(K, (n,), generator=generator).sort().values


def global_generator(n, K, generator):
    return torch.randint(K, (n,))


def one_value_short(n, K, generator):
    return torch.randint(K - 1, (n,), generator=generator)


# --- exercise 2: metrics.complexity, metrics.wilson_interval --------------------------------------


def complexity_clipped(acc, K):
    return max(0.0, (acc - 1 / K) / (1 - 1 / K))


def complexity_binary_always(acc, K):
    return 2 * acc - 1


def complexity_not_normalized(acc, K):
    return acc - 1 / K


def wald_interval(acc, n, z=1.96):
    half = z * math.sqrt(acc * (1 - acc) / n)
    return [max(0.0, acc - half), min(1.0, acc + half)]


def wilson_90(acc, n, z=1.645):
    center = (acc + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(acc * (1 - acc) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [center - half, center + half]


def wilson_from_the_check(acc, n):
    from extensions.exercises.ex2.check_ex2 import score_interval

    return list(score_interval(acc, n))


# --- exercise 3: model.own_class_head, model.RandomLabelHead.forward ------------------------------


def gather_by_loop(logits, y, K):  # right values, but the README asks for no loop
    per_class = logits.unflatten(-1, (-1, K))
    return torch.stack([per_class[..., i, y[i], :] for i in range(len(y))], -2)


def gather_transposed(logits, y, K):  # viewed (B, K, C): each head's outputs are not contiguous
    per_class = logits.unflatten(-1, (K, -1)).transpose(-1, -2)
    return per_class[..., torch.arange(len(y)), y, :]


def forward_never_frozen(self, z, y, frozen=False):
    out = torch.nn.functional.linear(z, self.linear.weight, self.linear.bias)
    return model.own_class_head(out, y, self.K) if self.per_class else out


def forward_frozen_cuts_z(self, z, y, frozen=False):
    w, b = self.linear.weight, self.linear.bias
    if frozen:
        w, b, z = w.detach(), b.detach(), z.detach()
    out = torch.nn.functional.linear(z, w, b)
    return model.own_class_head(out, y, self.K) if self.per_class else out


# --- exercise 4: GradReverse.backward, head_input, train.lam_at -----------------------------------


def reverse_without_the_sign(ctx, grad):
    (lam,) = ctx.saved_tensors
    return lam.to(grad.dtype) * grad, None


def reverse_without_lambda(ctx, grad):
    return -grad, None


def grl_reads_sg(z, lam, unlearn, memorize):
    return z if memorize else z.detach()


def memorize_reads_sg(z, lam, unlearn, memorize):
    return regularizer.grad_reverse(z, lam) if unlearn == 'grl' else z.detach()


def linear_ramp(progress, cfg):  # right at p = 0.5 and at the end, wrong in between
    if cfg.lam_schedule == 'dann':
        return cfg.lam * min(1.0, progress * 2 * (2 / (1 + math.exp(-5)) - 1))
    return cfg.lam


def ramp_with_the_wrong_sign(progress, cfg):
    if cfg.lam_schedule == 'dann':
        return cfg.lam * (2 / (1 + math.exp(10 * progress)) - 1)
    return cfg.lam


# --- exercise 5: regularizer.output_regularizer ---------------------------------------------------


def the_printed_sign(logits, r):
    p = torch.softmax(logits.float(), 1)
    return torch.log(1 - p[torch.arange(len(r)), r]).mean()


def clamped(logits, r):  # finite at saturation, but no gradient there
    p = torch.softmax(logits.float(), 1)
    return -torch.log((1 - p[torch.arange(len(r)), r]).clamp_min(1e-45)).mean()


def no_float32(logits, r):
    is_r = torch.arange(logits.shape[1], device=r.device) == r[:, None]
    wrong = logits.masked_fill(is_r, float('-inf'))
    return (torch.logsumexp(logits, 1) - torch.logsumexp(wrong, 1)).mean()


def downcast_to_float32(logits, r):  # right for bf16, but float64 logits lose precision
    logits = logits.float()
    is_r = torch.arange(logits.shape[1], device=r.device) == r[:, None]
    wrong = logits.masked_fill(is_r, float('-inf'))
    return (torch.logsumexp(logits, 1) - torch.logsumexp(wrong, 1)).mean()


def summed_over_the_batch(logits, r):
    logits = logits.float()
    is_r = torch.arange(logits.shape[1], device=r.device) == r[:, None]
    wrong = logits.masked_fill(is_r, float('-inf'))
    return (torch.logsumexp(logits, 1) - torch.logsumexp(wrong, 1)).sum()


# (exercise, where, name, wrong version)
MUTANTS = [
    (1, (data, 'draw_random_labels'), reseeded_each_call),
    (1, (data, 'draw_random_labels'), alternating),
    (1, (data, 'draw_random_labels'), sorted_labels),
    (1, (data, 'draw_random_labels'), global_generator),
    (1, (data, 'draw_random_labels'), one_value_short),
    (2, (metrics, 'complexity'), complexity_clipped),
    (2, (metrics, 'complexity'), complexity_binary_always),
    (2, (metrics, 'complexity'), complexity_not_normalized),
    (2, (metrics, 'wilson_interval'), wald_interval),
    (2, (metrics, 'wilson_interval'), wilson_90),
    (2, (metrics, 'wilson_interval'), wilson_from_the_check),
    (3, (model, 'own_class_head'), gather_by_loop),
    (3, (model, 'own_class_head'), gather_transposed),
    (3, (model.RandomLabelHead, 'forward'), forward_never_frozen),
    (3, (model.RandomLabelHead, 'forward'), forward_frozen_cuts_z),
    (4, (regularizer.GradReverse, 'backward'), staticmethod(reverse_without_the_sign)),
    (4, (regularizer.GradReverse, 'backward'), staticmethod(reverse_without_lambda)),
    (4, (regularizer, 'head_input'), grl_reads_sg),
    (4, (regularizer, 'head_input'), memorize_reads_sg),
    (4, (train, 'lam_at'), linear_ramp),
    (4, (train, 'lam_at'), ramp_with_the_wrong_sign),
    (5, (regularizer, 'output_regularizer'), the_printed_sign),
    (5, (regularizer, 'output_regularizer'), clamped),
    (5, (regularizer, 'output_regularizer'), no_float32),
    (5, (regularizer, 'output_regularizer'), downcast_to_float32),
    (5, (regularizer, 'output_regularizer'), summed_over_the_batch),
]


def name(mutant):
    function = mutant[2]
    return f'ex{mutant[0]}-{getattr(function, "__func__", function).__name__}'


def failures(exercise):
    """Run exercise N's check in this process: {test name: the exception it raised}."""
    check = importlib.import_module(f'extensions.exercises.ex{exercise}.check_ex{exercise}')
    tests = inspect.getmembers(check, lambda f: inspect.isfunction(f) and f.__name__[:5] == 'test_')
    failed = {}
    for test_name, test in tests:
        try:
            test()
        except Exception as e:  # a check that fails: an assertion, or the wrong version crashing
            failed[test_name] = e
    return failed


@pytest.mark.parametrize('exercise', [1, 2, 3, 4, 5])
def test_every_check_passes_on_the_reference(exercise):
    assert failures(exercise) == {}


def test_every_blanked_function_has_at_least_two_wrong_versions():
    tried = collections.Counter((ex, attribute) for ex, (_, attribute), _ in MUTANTS)
    for exercise, functions in BLANKS.items():
        for _, qualname in functions:
            assert tried[exercise, qualname.split('.')[-1]] >= 2, (exercise, qualname)


@pytest.mark.parametrize('mutant', MUTANTS, ids=name)
def test_the_check_fails_on_a_wrong_version(mutant, monkeypatch):
    exercise, (where, attribute), wrong = mutant
    monkeypatch.setattr(where, attribute, wrong)
    failed = failures(exercise)
    assert failed, f'check {exercise} passes {name(mutant)}'
    # the failure comes from the wrong version, not from reading its source
    assert not any(isinstance(e, (SyntaxError, OSError)) for e in failed.values()), failed
