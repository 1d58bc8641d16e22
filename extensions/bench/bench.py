"""Training throughput, side by side in one process: python -m extensions.bench.bench [--model ...]

Compares, on CIFAR-shaped synthetic data (or Fashion-MNIST-shaped on the CPU, at small sizes):
  conventional  torchvision-style dataset, PIL transforms on CPU workers, a DataLoader
                (pytorch/examples' recipe)
  ours          uint8 data on the device, crop and flip batched on the device (data.GpuLoader)
with and without the random-label heads at all taps plus the `reg` term, fp32 against
bf16 + channels_last, and eager against torch.compile. Every row runs the same training step
(train.train_step, SGD) after an untimed warm-up, timed with the device synchronized; the table
gives images/s and ratios.
"""

import argparse
import time

import torch
import torchvision.transforms as T
from PIL import Image

import data as data_lib
import train
from model import Net


class ConventionalDataset(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does per sample: a PIL image, then the transforms, on a
    CPU worker."""

    def __init__(self, x, y, r, mean, std):
        # (N, H, W[, C]) uint8
        self.images = x.permute(0, 2, 3, 1).squeeze(-1).numpy()
        self.y = y
        self.r = r
        size = x.shape[-1]
        self.transform = T.Compose(
            [
                T.RandomCrop(size, padding=4),
                T.RandomHorizontalFlip(),
                T.ToTensor(),
                T.Normalize(mean, std),
            ]
        )

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), self.y[i], self.r[i]


def conventional_batches(d, batch_size, device, workers):
    loader = torch.utils.data.DataLoader(
        ConventionalDataset(d.train_x, d.train_y, d.train_r, d.mean, d.std),
        batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == 'cuda',
        drop_last=True,
        persistent_workers=workers > 0,
    )
    fmt = torch.channels_last if device.type == 'cuda' else torch.contiguous_format
    while True:
        for x, y, r in loader:
            yield (
                x.to(device, non_blocking=True).contiguous(memory_format=fmt),
                y.to(device, non_blocking=True),
                r.to(device, non_blocking=True),
            )


def our_batches(d, batch_size, device, channels_last=True):
    order = {'shuffle': True, 'augment': True, 'drop_last': True}
    loader = data_lib.GpuLoader(
        d.train_x, (d.train_y, d.train_r), d.mean, d.std, batch_size, device, **order
    )
    if not channels_last:
        loader.memory_format = torch.contiguous_format
    while True:
        yield from loader


def images_per_s(batches, cfg, d, device, warmup, steps, heads, bf16, channels_last, compile_):
    """Build a fresh model and time `steps` training steps after `warmup` untimed ones."""
    cfg = train.build_parser().parse_args(
        [
            '--taps',
            'all' if heads else 'penultimate',
            '--unlearn',
            'reg' if heads else 'none',
            '--model',
            cfg.model,
            '--batch-size',
            str(cfg.batch_size),
        ]
        + ([] if bf16 else ['--no-bf16'])
        + (['--compile'] if compile_ else [])  # train_step compiles itself under --compile
    )
    torch.manual_seed(0)
    model = Net(
        cfg.model, d.train_x.shape[1], d.num_classes, taps=cfg.taps, image_size=d.train_x.shape[-1]
    )
    channels_last = channels_last and device.type == 'cuda'  # as in train.build_model
    model = model.to(
        device, memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )
    opt = torch.optim.SGD(
        model.parameters(), lr=0.01, momentum=0.9, nesterov=True, fused=device.type == 'cuda'
    )
    lam = torch.ones((), device=device)
    if heads:
        step = train.train_step(model, batches, cfg, train.objective)
    else:  # the same network with no random-label heads and no unlearning term: class loss only

        def step(batch, lam):
            x, y, _ = batch
            with data_lib.autocast(x.device, cfg.bf16):
                loss = torch.nn.functional.cross_entropy(model(x).logits.float(), y)
            return loss, loss.detach()

    step = torch.compile(step) if compile_ and not heads else step
    for i in range(warmup + steps):
        if i == warmup:
            sync(device)
            t0 = time.perf_counter()
        loss, _ = step(next(batches), lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return steps * cfg.batch_size / (time.perf_counter() - t0)


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', default=None, help='default: wrn16_4 on CUDA, cnn on the CPU')
    p.add_argument(
        '--batch-size', type=int, default=None, help='default: 512 on CUDA, 64 on the CPU'
    )
    p.add_argument(
        '--steps',
        type=int,
        default=None,
        help='timed steps per row (default: 50 on CUDA, 5 on the CPU)',
    )
    p.add_argument(
        '--workers', type=int, default=None, help='DataLoader workers (default: CPU cores - 1)'
    )
    p.add_argument(
        '--compile',
        action=argparse.BooleanOptionalAction,
        default=None,
        help='also time torch.compile (default: on CUDA)',
    )
    args = p.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = torch.device('cuda' if cuda else 'cpu')
    args.model = args.model or ('wrn16_4' if cuda else 'cnn')
    args.batch_size = args.batch_size or (512 if cuda else 64)
    steps = args.steps or (50 if cuda else 5)
    warmup = 10 if cuda else 2
    workers = (
        args.workers
        if args.workers is not None
        else max(1, (torch.multiprocessing.cpu_count() or 2) - 1)
    )
    compile_ = cuda if args.compile is None else args.compile
    d = data_lib.load(
        'fake',
        '',
        0,
        2,
        fake_like='cifar10' if cuda else 'fashion-mnist',
        subset=None if cuda else 2048,
    )
    name = torch.cuda.get_device_name() if cuda else 'cpu'
    print(
        f'torch {torch.__version__} on {name} | {args.model}, batch {args.batch_size}, '
        f'{steps} timed steps after {warmup} warm-up, '
        f'{len(d.train_x)} images {tuple(d.train_x.shape[1:])}, '
        f'conventional loader with {workers} workers',
        flush=True,
    )
    if not cuda:
        print(
            '(CPU: bf16 autocast and channels_last are CUDA-only, '
            'so "bf16" and "fp32" rows run the same fp32 step)'
        )

    rows = {}  # name: images/s

    def row(label, batches, heads=True, bf16=True, channels_last=True, compile_=False):
        rows[label] = images_per_s(
            batches, args, d, device, warmup, steps, heads, bf16, channels_last, compile_
        )
        print(f'  {label:<52s} {rows[label]:>10,.0f} img/s', flush=True)

    row(
        'conventional DataLoader, heads + reg, bf16',
        conventional_batches(d, args.batch_size, device, workers),
    )
    row(
        'ours, no heads, bf16 + channels_last', our_batches(d, args.batch_size, device), heads=False
    )
    row(
        'ours, heads at all taps + reg, bf16 + channels_last',
        our_batches(d, args.batch_size, device),
    )
    row(
        'ours, heads + reg, fp32',
        our_batches(d, args.batch_size, device, channels_last=False),
        bf16=False,
        channels_last=False,
    )
    if compile_:
        row(
            'ours, no heads, compiled',
            our_batches(d, args.batch_size, device),
            heads=False,
            compile_=True,
        )
        row('ours, heads + reg, compiled', our_batches(d, args.batch_size, device), compile_=True)

    ours = rows['ours, heads at all taps + reg, bf16 + channels_last']
    conventional = rows['conventional DataLoader, heads + reg, bf16']
    no_heads = rows['ours, no heads, bf16 + channels_last']
    fp32 = rows['ours, heads + reg, fp32']
    print('\nratios')
    print(f'  ours / conventional (heads + reg, eager):   {ours / conventional:.2f}x')
    print(f'  head + reg overhead, eager:                 {100 * (no_heads / ours - 1):+.1f}%')
    print(f'  bf16 + channels_last / fp32:                {ours / fp32:.2f}x')
    if compile_:
        compiled = rows['ours, heads + reg, compiled']
        no_heads_compiled = rows['ours, no heads, compiled']
        overhead = 100 * (no_heads_compiled / compiled - 1)
        print(f'  head + reg overhead, compiled:              {overhead:+.1f}%')
        print(f'  compiled / eager (heads + reg):             {compiled / ours:.2f}x')
    return rows


if __name__ == '__main__':
    main()
