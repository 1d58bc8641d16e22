"""The probe extension: a torchvision architecture with its checkpoint, on this repo's data or on
two image folders (with their size and normalization); FX taps against model.py's own; a run
folder at its own tap names and other label draws; a positive control through the Python API; the
sentences for a shattering head; --list-layers; bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision
from conftest import ROOT, run_train
from PIL import Image

import model
from extensions.probe import probe, taps
from extensions.report.markdown import EQUALITY_WORDS

KEYS = {'dim', 'samples_per_head', 'a_train', 'a_heldout', 'a_init', 'memorization'}
KEYS |= {'memorization_ci', 'online', 'steps', 'a_fresh', 'cover', 'specific', 'specific_ci'}
FAKE = ['--dataset', 'fake', '--fake-like', 'fashion-mnist', '--device', 'cpu']


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A torchvision ResNet-18 with random weights (seed 1), saved as a plain state_dict."""
    path = tmp_path_factory.mktemp('resnet18') / 'resnet18.pt'
    torch.manual_seed(1)
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), path)
    return str(path)


def write_folder(root, classes=('cat', 'dog'), per_class=8, seed=0):
    """An ImageFolder tree of small random PNGs, grey and colour mixed."""
    rng = np.random.default_rng(seed)
    for c in classes:
        os.makedirs(root / c)
        for i in range(per_class):
            shape = (32, 32, 3) if i % 2 else (32, 32)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / c / f'{i}.png')
    return str(root)


def test_resnet18_on_fake_data_gives_the_table_and_probe_json(checkpoint, tmp_path, capsys):
    out = tmp_path / 'probe.json'
    argv = ['--arch', 'resnet18', '--checkpoint', checkpoint, *FAKE, '--n', '48', '--out', str(out)]
    result = probe.main(argv)
    text = capsys.readouterr().out
    assert json.loads(out.read_text()) == result
    assert result['status'] == 'done' and result['n'] == 48 and result['arch'] == 'resnet18'
    # the default rule: stages but the last (its pooled output is the penultimate's input)
    assert list(result['taps']) == ['layer1', 'layer2', 'layer3', 'penultimate']
    assert result['layers']['penultimate'] == 'flatten'
    dims = {t: v['dim'] for t, v in result['taps'].items()}
    assert dims == {'layer1': 64, 'layer2': 128, 'layer3': 256, 'penultimate': 512}
    for t in result['taps'].values():
        assert KEYS <= set(t) and t['online'] is None and t['samples_per_head'] == 48
        assert t['cover'] == 2 * t['dim']
    assert 'a_heldout' in text and '2D(K-1)' in text and 'test split of fake' in text
    # 48 samples against 2D = 1024 at the penultimate: every fit reads 100%, and the table says
    # the measurement is uninformative instead of reading like a finding
    assert 'penultimate: every fit reads about 100%' in text and 'uninformative' in text


def test_image_folders_go_through_the_same_path(checkpoint, tmp_path, capsys):
    train_dir = write_folder(tmp_path / 'train', seed=0)
    heldout_dir = write_folder(tmp_path / 'heldout', seed=1)
    argv = ['--arch', 'resnet18', '--checkpoint', checkpoint, '--device', 'cpu']
    argv += ['--train-dir', train_dir, '--heldout-dir', heldout_dir, '--rlp-head', 'per-class']
    result = probe.main([*argv, '--layers', 'layer3', 'penultimate', '--batch-size', '16'])
    text = capsys.readouterr().out
    with open(os.path.join(os.path.dirname(checkpoint), 'probe.json')) as f:  # its default place
        assert json.load(f) == result
    assert result['n'] == 16 and list(result['taps']) == ['layer3', 'penultimate']
    assert result['taps']['layer3']['samples_per_head'] == 8  # per-class: 2 classes
    assert f'images in {heldout_dir}' in text
    sized = ['--image-size', '40', '--mean', '0.5', '0.5', '0.5', '--std', '0.2', '0.2', '0.2']
    args = probe.parse_args([*argv, *sized])
    transform = probe.folder_transform(args)
    x = transform(Image.fromarray(np.zeros((32, 32), dtype=np.uint8)))  # grey in, RGB out
    assert x.shape == (3, 40, 40) and torch.allclose(x, torch.full_like(x, -2.5))


def test_fx_taps_equal_model_py_taps():
    """Named layers of model.Net, pooled by model.pool, are exactly its own taps."""
    net = model.Net('resnet18', 1, 10, taps='all', image_size=28).eval()
    nodes = taps.resolve_layers(net, ['stages.0', 'stages.2', 'penultimate'])
    assert nodes == {'stages.0': 'stages.0', 'stages.2': 'stages.2', 'penultimate': 'dropout'}
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        own, named = net.features(x), taps.extractor(net, nodes)(x)
    for mine, theirs in (('stage1', 'stages.0'), ('stage3', 'stages.2'), ('penultimate',) * 2):
        assert torch.equal(own[mine], taps.pool(named[theirs])), mine


def test_run_folder_takes_its_own_tap_names_and_other_label_draws(tmp_path, capsys):
    """A run folder probed at named layers, its own names among them (one set of names: what
    --list-layers prints, --layers takes); its probe.json stays train.py's, the new numbers go to
    reprobe.json; another --label-seed draws other labels; the penultimate keeps its online head."""
    run_train(tmp_path, '--epochs', '1', '--rlp-head', 'shared', '--taps', 'all', '--probe')
    own = json.loads((tmp_path / 'probe.json').read_text())
    result = probe.main([str(tmp_path), '--layers', 'stage2', 'stages.0.2', 'penultimate'])
    assert json.loads((tmp_path / 'reprobe.json').read_text()) == result
    assert json.loads((tmp_path / 'probe.json').read_text()) == own  # left as train.py wrote it
    found = result['taps']
    assert set(found) == {'stage2', 'stages.0.2', 'penultimate'}
    assert found['stage2']['dim'] == 32 and found['stage2']['online'] is not None  # its own head
    assert found['stages.0.2']['online'] is None  # a layer without a head
    assert found['stage2']['a_fresh'] == own['taps']['stage2']['a_fresh']  # the same fits
    other = probe.main([str(tmp_path), '--label-seed', '5', '--out', str(tmp_path / 'five.json')])
    assert (
        other['seed'] == 5
        and other['taps']['penultimate']['a_fresh'] != own['taps']['penultimate']['a_fresh']
    )
    assert other['taps']['penultimate']['a_train'] == own['taps']['penultimate']['a_train']  # r
    probe.main([str(tmp_path), '--list-layers'])
    out = capsys.readouterr().out.splitlines()
    assert {'stage1', 'stage2', 'penultimate', 'stages.0.0'} <= set(out)
    assert out[-1].startswith('default taps: stage1 stage2 penultimate')
    note = probe.main([str(tmp_path), '--n', '99999', '--out', str(tmp_path / 'all.json')])
    assert (
        note['n'] == 512
        and 'note: --n 99999 is more than the data holds' in capsys.readouterr().out
    )


def test_positive_control_through_the_python_api():
    """Any nn.Module: training images that carry their random label in one pixel read m >> 0,
    held-out images (same distribution, the pixel unrelated to their labels) do not."""
    n, K, seed = 300, 2, 7
    g = torch.Generator().manual_seed(seed)  # probe() draws the labels the same way
    r_train = torch.randint(K, (n,), generator=g)
    x = torch.randn(2 * n, 8, generator=torch.Generator().manual_seed(0))
    x[:n, 0] = 3.0 * r_train  # "memorized": the features of a training sample hold its label
    x[n:, 0] = 3.0 * torch.randint(K, (n,), generator=torch.Generator().manual_seed(1))
    y = torch.zeros(2 * n, dtype=torch.long)
    net = nn.Sequential(nn.Flatten(), nn.Linear(8, 10)).train()
    train = torch.utils.data.TensorDataset(x[:n], y[:n])
    heldout = torch.utils.data.TensorDataset(x[n:], y[n:])
    rng = torch.get_rng_state()
    result = probe.probe(net, train, heldout, random_labels=K, label_seed=seed)
    assert torch.equal(torch.get_rng_state(), rng) and net.training  # left as it was
    t = result['taps']['penultimate']
    assert result['layers'] == {'penultimate': '0'} and t['dim'] == 8
    assert t['a_train'] > 0.95 and t['specific_ci'][0] > 0.3, t  # these labels are in there
    assert t['a_fresh'] < 0.75  # other labels on the same features: only the head's capacity
    assert t['memorization_ci'][0] <= 0 <= t['memorization_ci'][1]  # no more room for any labels
    same = probe.probe(net, train, heldout, random_labels=K, label_seed=seed, init_model=net)
    t = same['taps']['penultimate']  # the floor from these very features: as for fresh labels
    assert abs(t['a_init'] - t['a_fresh']) < 0.03 and t['a_init'] < 0.75


def test_pool_and_the_default_rule():
    assert taps.pool(torch.ones(2, 5)).shape == (2, 5)
    x = torch.arange(2 * 3 * 4 * 5.0).view(2, 3, 4, 5)
    assert torch.equal(taps.pool(x), x.mean((2, 3)))  # global average pool, (B, C, H, W)
    assert torch.equal(taps.pool(x[:, :, 0]), x[:, :, 0].mean(1))  # (B, T, D) tokens
    # one `features` container: its children that hold parameters, all but the last
    nodes = taps.resolve_layers(torchvision.models.mobilenet_v3_small())
    assert list(nodes) == [f'features.{i}' for i in range(12)] + ['penultimate']
    assert nodes['penultimate'] == 'classifier.2'  # the dropout before the last Linear


def test_init_is_the_architecture_seeded_and_leaves_the_rng_alone(checkpoint):
    rng = torch.get_rng_state()
    model, init = probe.load_arch('resnet18', checkpoint, seed=1)  # the seed that made it
    assert torch.equal(torch.get_rng_state(), rng)
    same = [torch.equal(a, b) for a, b in zip(model.parameters(), init.parameters(), strict=True)]
    assert all(same)
    _, other = probe.load_arch('resnet18', checkpoint, seed=0)
    assert not torch.equal(other.conv1.weight, model.conv1.weight)
    assert model.fc.out_features == 10  # counted from the checkpoint


def test_list_layers_prints_node_names(capsys):
    probe.main(['--arch', 'resnet18', '--list-layers'])
    lines = capsys.readouterr().out.splitlines()
    assert {'conv1', 'layer1.0.conv1', 'layer4.1.relu_1', 'flatten', 'fc'} <= set(lines)
    assert lines[-1] == 'default taps: layer1 layer2 layer3 penultimate (= flatten)'


def one_line_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        probe.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count('\n') == 1 and err.startswith('probe: error: '), err
    return err


def test_bad_input_is_one_line_and_exit_2(checkpoint, tmp_path, capsys):
    arch = ['--arch', 'resnet18', '--checkpoint', checkpoint, *FAKE]
    err = one_line_exit_2(['--arch', 'resnet19', '--checkpoint', checkpoint, *FAKE], capsys)
    assert '--arch resnet19' in err and 'resnet18' in err
    assert '--layers layer9' in one_line_exit_2([*arch, '--layers', 'layer1', 'layer9'], capsys)
    other = tmp_path / 'mobilenet.pt'
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), other)
    err = one_line_exit_2([*arch, '--checkpoint', str(other)], capsys)
    assert 'is not a resnet18 state_dict' in err
    assert 'no such file' in one_line_exit_2([*arch, '--checkpoint', str(tmp_path / 'x')], capsys)
    assert '--out' in one_line_exit_2([*arch, '--out', str(tmp_path / 'no' / 'p.json')], capsys)
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'heldout' / 'cat').mkdir(parents=True)  # a class folder without images
    folders = ['--train-dir', str(tmp_path / 'empty'), '--heldout-dir', str(tmp_path / 'heldout')]
    argv = ['--arch', 'resnet18', '--checkpoint', checkpoint, *folders]
    assert '--train-dir' in one_line_exit_2(argv, capsys)
    write_folder(tmp_path / 'empty', classes=['dog'], per_class=1)
    assert '--heldout-dir' in one_line_exit_2(argv, capsys)
    (tmp_path / 'heldout' / 'cat' / 'broken.png').write_bytes(b'not a png')
    assert 'broken.png' in one_line_exit_2(argv, capsys)
    assert '--checkpoint' in one_line_exit_2(['--arch', 'resnet18', *FAKE], capsys)
    assert '--dataset' in one_line_exit_2(arch[:4], capsys)  # no data
    assert 'not both' in one_line_exit_2([str(tmp_path), *arch], capsys)
    assert '--random-labels is for --arch' in one_line_exit_2(
        [str(tmp_path), '--random-labels', '3'], capsys
    )
    whole = tmp_path / 'whole-model.pt'
    torch.save(torchvision.models.resnet18(num_classes=10), whole)  # a pickled nn.Module
    err = one_line_exit_2([*arch, '--checkpoint', str(whole)], capsys)
    assert 'save model.state_dict() instead' in err


def test_command_line_error_has_no_traceback(checkpoint):
    argv = [sys.executable, '-m', 'extensions.probe.probe', '--arch', 'resnet18']
    argv += ['--checkpoint', checkpoint, *FAKE, '--layers', 'nosuch']
    done = subprocess.run(argv, cwd=ROOT, capture_output=True)
    err = done.stderr.decode()
    assert done.returncode == 2 and err.count('\n') == 1, err
    assert err.startswith('probe: error: --layers nosuch: no such layer in ResNet'), err


def test_a_tap_whose_interval_holds_0_is_bounded_not_called_equal():
    tap = {'a_train': 0.57, 'a_fresh': 0.57, 'a_heldout': 0.568, 'samples_per_head': 2000}
    tap |= {'memorization_ci': [-0.006, 0.01], 'memorization_se': 0.004, 'cover': 128}
    tap |= {'specific_ci': [-0.02, 0.02]}
    text = probe.sentence(tap)
    assert text.startswith('m lies within [-0.6, +1.0] points; an effect of 1.1 would have been')
    assert not [w for w in EQUALITY_WORDS if w in text.lower()], text
