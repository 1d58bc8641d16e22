"""train.py on one half of a pool: python -m extensions.validation.train_half --half J [options]

Feldman & Zhang 2020 estimate a sample's leave-out memorization from networks trained on random
halves of a pool: P[correct | trained on it] - P[correct | left out]. Here the pool is train.py's
--subset (2n images, drawn by --label-seed) and --half J trains on its J-th seeded half: halves
2k and 2k + 1 split the pool the same way, so they are complementary, and every pool image is in
exactly one network of the pair. Every image the network does not train on, the other half
included, is its held-out set. Without --half this is train.py (the run is train.run itself).
"""

import dataclasses

import torch

import data as data_lib
import train


def build_parser():
    p = train.build_parser()
    p.prog = 'train_half'
    what = 'train on the J-th seeded half of the --subset pool (2k, 2k+1: complementary)'
    p.add_argument('--half', type=int, default=None, metavar='J', help=what)
    return p


def half_of(data, label_seed, half):
    """The Data of a network trained on half `half` of data's training images (the pool)."""
    g = torch.Generator().manual_seed(label_seed * 1000 + half // 2)  # one split per pair
    order = torch.randperm(len(data.train_y), generator=g)
    mine = order[: len(order) // 2] if half % 2 == 0 else order[len(order) // 2 :]
    inside = torch.zeros(len(data.train_y), dtype=torch.bool)
    inside[mine] = True
    keep, other = inside.nonzero()[:, 0], (~inside).nonzero()[:, 0]  # in dataset order
    pixels = data.train_x[keep].float().div_(255)
    split = {f'train_{k}': getattr(data, f'train_{k}')[keep] for k in ('x', 'y', 'r', 'index')}
    split['train_noisy'] = data.train_noisy[keep]
    for k in 'xyr':  # the other half joins the held-out images
        split[f'heldout_{k}'] = torch.cat(
            [getattr(data, f'train_{k}')[other], getattr(data, f'heldout_{k}')]
        )
    split['mean'] = tuple(pixels.mean((0, 2, 3)).tolist())
    split['std'] = tuple(pixels.std((0, 2, 3)).tolist())
    return dataclasses.replace(data, **split)


def main(argv=None):
    p = build_parser()
    cfg = train.parse_args(argv, p)
    if cfg.half is not None and (cfg.half < 0 or (cfg.subset or 2) < 2):
        p.error(f'--half must be >= 0 and needs --subset of at least 2 images (got {cfg.half})')
    try:
        pool = train.load_data(cfg)
        data = pool if cfg.half is None else half_of(pool, cfg.label_seed, cfg.half)
        train.run(cfg, data)
    except data_lib.DataError as e:
        train.fail(str(e))


if __name__ == '__main__':
    main()
