"""The related systems against independent references: the robust log loss's symmetry, the
confusion loss's zero gradient at a uniform head, LIMIT's replaced gradient, turn-over dropout's
masks; each flag end to end, resumed to the same numbers; and, without any of them, the same
results.json and probe.json as train.py."""

import functools
import json
import math
import os
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, interrupt_in_epoch_two, run_train, without_timings

import data
import train
from extensions.related import classloss, train_related
from extensions.related.tod import TurnOverDropout
from extensions.related.train_related import confusion_loss

OPTIONS = {'unlearn': 'none', 'unlearn_taps': 'penultimate', 'memorize': False, 'tod': False}
OPTIONS |= {
    'loss': 'ce',
    'rll_alpha': 0.1,
    'limit': False,
    'limit_beta': 1.0,
    'label_smoothing': 0.0,
}


def related_model(limit=False, tod=False):
    """train.py's network in float64 with the systems' parts, as train_related builds it."""
    cfg = train.build_parser().parse_args(['--model', 'cnn', '--random-labels', '2'])
    cfg = SimpleNamespace(**vars(cfg) | {'limit': limit, 'tod': tod})
    images = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    fake = SimpleNamespace(
        train_x=images, num_classes=10, train_y=torch.zeros(2), heldout_y=torch.zeros(6)
    )
    torch.manual_seed(0)
    return train_related.build_model(cfg, fake, torch.device('cpu')).double()


def related_losses(model, x, y, r, **options):
    cfg = SimpleNamespace(**OPTIONS | options)
    return train_related.objective(model, (x, y, r), options.get('lam', 1.0), cfg)


def rll_by_hand(logits, y, alpha):
    """L_RLL of one sample (Patel & Sastry 2021), written out term by term in float64."""
    p = torch.softmax(logits.double(), 0).tolist()
    C = len(p)
    rest = sum(math.log(alpha + p[j]) for j in range(C) if j != y) / (C - 1)
    return math.log((1 + alpha) / alpha) - math.log(alpha + p[y]) + rest


@pytest.mark.parametrize('alpha', [0.01, 0.1, 1.0])
def test_rll_matches_the_formula_and_its_sum_over_labels_is_constant(alpha):
    torch.manual_seed(0)
    for C in (2, 10):
        logits = 3 * torch.randn(C, dtype=torch.float64)
        direct = [rll_by_hand(logits, y, alpha) for y in range(C)]
        ours = [classloss.robust_log_loss(logits[None], torch.tensor([y]), alpha) for y in range(C)]
        assert torch.allclose(torch.stack(ours), torch.tensor(direct, dtype=torch.float64))
        assert math.isclose(sum(direct), C * math.log((1 + alpha) / alpha), rel_tol=1e-12)


def test_rll_is_zero_at_the_label_and_positive_elsewhere():
    logits = torch.tensor([[60.0, 0.0, 0.0]])
    assert classloss.robust_log_loss(logits, torch.tensor([0]), 0.1).abs() < 1e-6
    assert classloss.robust_log_loss(logits, torch.tensor([1]), 0.1) > 1


def test_confusion_gradient_is_zero_at_a_uniform_head_and_not_elsewhere():
    uniform = torch.full((4, 3), 0.7, dtype=torch.float64, requires_grad=True)  # any constant
    (g,) = torch.autograd.grad(confusion_loss(uniform), uniform)
    assert g.abs().max() < 1e-15
    logits = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(confusion_loss(logits), logits)
    reference = (torch.softmax(logits, 1) - 1 / 3) / 4  # d/da of -(1/K) Σ log p̂, mean over B
    assert torch.allclose(g, reference.detach()) and g.abs().max() > 1e-3
    assert torch.autograd.gradcheck(confusion_loss, (logits,))


def test_confusion_term_moves_the_backbone_not_the_heads_and_vanishes_at_a_uniform_head():
    model = related_model()
    x = torch.randn(8, 1, 8, 8, dtype=torch.float64)
    y, r = torch.randint(10, (8,)), torch.randint(2, (8,))
    body = [p for n, p in model.named_parameters() if not n.startswith('rand_heads.')]
    heads = list(model.rand_heads.parameters())
    terms, _, _ = related_losses(model, x, y, r, unlearn='confusion')
    grads = torch.autograd.grad(terms['unlearn'], body + heads, allow_unused=True)
    assert all(g is None or not g.any() for g in grads[len(body) :])
    assert any(g is not None and g.any() for g in grads[: len(body)])
    torch.nn.init.zeros_(model.rand_heads['penultimate'].linear.weight)  # a uniform head
    terms, _, _ = related_losses(model, x, y, r, unlearn='confusion')
    grads = torch.autograd.grad(terms['unlearn'], body, allow_unused=True)
    assert all(g is None or g.abs().max() < 1e-12 for g in grads)


def test_limit_hands_the_classifier_the_predicted_gradient_not_the_true_one():
    model = related_model(limit=True)
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    y, r = torch.randint(10, (6,)), torch.randint(2, (6,))
    seen = {}

    def keep(module, inputs, a):  # a: the classifier's logits, and the gradient they receive
        seen['a'] = a
        a.register_hook(lambda grad: seen.setdefault('g', []).append(grad))

    model.fc.register_forward_hook(keep)
    terms, _, _ = related_losses(model, x, y, r, limit=True, limit_beta=0.5)
    terms['total'].backward()
    a = seen['a'].detach()
    (grad_a,) = seen['g']
    with torch.no_grad():
        g_hat = torch.softmax(a, 1) - torch.softmax(model.limit_q(x), 1)  # predicted from x
    g_true = torch.softmax(a, 1) - F.one_hot(y, 10)
    assert torch.allclose(grad_a, g_hat / 6, atol=1e-12)
    assert not torch.allclose(grad_a, g_true / 6, atol=1e-3)
    assert math.isclose(terms['class'].item(), F.cross_entropy(a, y).item(), rel_tol=1e-6)
    # q learns from L_q = ‖ĝ - g‖² + β‖ĝ‖² (mean over the batch), a from ĝ alone
    q = dict(model.limit_q.named_parameters())
    b = model.limit_q(x)
    g_hat = torch.softmax(a, 1) - torch.softmax(b, 1)
    reference = ((g_hat - g_true).pow(2).sum(1) + 0.5 * g_hat.pow(2).sum(1)).mean()
    expected = torch.autograd.grad(reference, list(q.values()))
    for (name, p), e in zip(q.items(), expected, strict=True):
        assert torch.allclose(p.grad, e, atol=1e-10), name


def test_tod_masks_are_fixed_per_index_and_a_mask_and_its_flip_are_complementary():
    tod = TurnOverDropout(1000, 64, seed=3)
    assert torch.equal(tod.masks, TurnOverDropout(1000, 64, seed=3).masks)  # drawn once, seeded
    assert not torch.equal(tod.masks, TurnOverDropout(1000, 64, seed=4).masks)
    assert abs(tod.masks.float().mean().item() - 0.5) < 0.01  # p = 1/2
    z = torch.randn(5, 64)
    z[3] = z[0]
    index = torch.tensor([7, 999, 0, 7, 42])
    kept, flipped = tod(z, index), tod(z, index, flip=True)
    assert torch.equal(kept[0], kept[3])  # the same index, the same mask
    assert torch.equal(kept + flipped, 2 * z) and not (kept * flipped).any()
    assert torch.equal(tod(z), z)  # no index, no mask


# the synthetic set is seeded: one draw serves every run of this module (a second saved per run)
FAKE_ONCE = functools.cache(data.make_fake)


@pytest.fixture
def fake_once(monkeypatch):
    monkeypatch.setattr(data, 'make_fake', FAKE_ONCE)


def spy_on_masks(monkeypatch):
    """Record the turn-over dropout mask of every sample in every training step, and fail if a
    dataset index ever gets another mask than its first."""
    seen, steps = {}, []
    forward = TurnOverDropout.forward

    def spy(self, z, index=None, flip=False):
        if index is not None and torch.is_grad_enabled():  # a training step
            steps.append(index)
            for i, m in zip(index.tolist(), self.masks[index].tolist(), strict=True):
                assert seen.setdefault(i, m) == m, f'index {i} changed its mask'
        return forward(self, z, index, flip)

    monkeypatch.setattr(TurnOverDropout, 'forward', spy)
    return seen, steps


FLAGS = {
    'rll': ['--loss', 'rll', '--rll-alpha', '0.1'],
    'limit': ['--limit', '--limit-beta', '1'],
    'confusion': ['--unlearn', 'confusion', '--lam', '1'],
    'tod': ['--tod'],
}


SMALL = ['--epochs', '2', '--label-noise', '0.4', '--subset', '128', '--test-subset', '128']


@pytest.mark.parametrize('name', FLAGS)
def test_flag_runs_end_to_end_and_resumes_to_the_same_numbers(
    name, tmp_path, monkeypatch, fake_once
):
    """Two epochs, shuffled and augmented; under --tod every index keeps its mask throughout."""
    args = [*SMALL, '--augment', *FLAGS[name]]
    seen, steps = spy_on_masks(monkeypatch)
    main = train_related.main
    whole = run_train(tmp_path / 'whole', *args, main=main)
    assert whole['status'] == 'done' and whole['config'][FLAGS[name][0][2:].replace('-', '_')]
    interrupt_in_epoch_two(monkeypatch, tmp_path / 'resumed', *args, main=main)
    resumed = run_train(tmp_path / 'resumed', *args, main=main)
    assert without_timings(resumed) == without_timings(whole)
    final = whole['final']
    assert final['train_acc_clean'] is not None and final['train_acc_noisy'] is not None
    if name == 'tod':
        assert len(seen) == 128 and len(steps) >= 2 * 2  # both epochs, every sample
        argv = [*TINY, *args, '--out', str(tmp_path / 'whole')]
        cfg = train.parse_args(argv, train_related.build_parser())
        assert set(seen) == set(train.load_data(cfg).train_index.tolist())  # dataset indices
        per_sample = torch.load(tmp_path / 'whole' / 'self_influence.pt', weights_only=True)
        assert len(per_sample['self_influence']) == 128 and per_sample['noisy'].any()
        assert set(final['self_influence']) == {'clean', 'noisy'}
        assert all(math.isfinite(v) for v in final['self_influence'].values())
        assert {'hard', 'easy'} <= set(final['test_influence'])
        assert set(whole['history'][0]['self_influence']) == {'clean', 'noisy'}
    else:
        assert 'self_influence' not in final
        assert not os.path.exists(tmp_path / 'whole' / 'self_influence.pt')


BAD = {
    'unknown class loss': ['--loss', 'mse'],
    'zero rll alpha': ['--rll-alpha', '0'],
    'negative limit beta': ['--limit-beta', '-1'],
    'rll with smoothing': ['--loss', 'rll', '--label-smoothing', '0.1'],
    'limit with rll': ['--limit', '--loss', 'rll'],
    'memorize with confusion': ['--memorize', '--unlearn', 'confusion'],
}


@pytest.mark.parametrize('name', BAD)
def test_bad_related_flag_is_one_line_and_exit_2(name, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        train_related.main([*TINY, '--out', str(tmp_path), *BAD[name]])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count('\n') == 1 and 'Traceback' not in err, err
    assert BAD[name][0] in err or BAD[name][-2] in err, err


def test_without_a_related_option_it_writes_what_train_py_writes(tmp_path, fake_once):
    """train_related is train.run with its seams: with none of its options, results.json
    (timings and the added options aside) and probe.json must be train.py's, number for number."""
    args = ['--epochs', '2', '--augment', '--dropout', '0.2', '--taps', 'all', '--unlearn', 'reg']
    args += ['--subset', '256', '--rlp-head', 'shared', '--probe']
    plain = run_train(tmp_path / 'train', *args)
    related = run_train(tmp_path / 'related', *args, main=train_related.main)
    assert without_timings(related) == without_timings(plain)
    added = {'loss', 'rll_alpha', 'limit', 'limit_beta', 'tod'}
    assert {k: v for k, v in related['config'].items() if k not in added | {'out'}} == {
        k: v for k, v in plain['config'].items() if k != 'out'
    }
    probes = [json.loads((tmp_path / d / 'probe.json').read_text()) for d in ('train', 'related')]
    assert probes[0] | {'commit': ''} == probes[1] | {'commit': ''}
