"""train.py on one half of a pool: python -m extensions.validation.train_half --half J [options]

Feldman & Zhang 2020 estimate a sample's leave-out memorization from networks trained on random
halves of a pool: P[correct | trained on it] - P[correct | left out]. Here the pool is train.py's
--subset (2n images, drawn by --label-seed) and --half J trains on its J-th seeded half: halves
2k and 2k + 1 split the pool the same way, so they are complementary, and every pool image is in
exactly one network of the pair. Every image the network does not train on, the other half
included, is its held-out set. The run is train.run with this data (the `load_data` seam); without
--half it is train.py's.
"""

import dataclasses

import torch

import train


def build_parser():
    p = train.build_parser()
    p.prog = 'train_half'
    what = 'train on the J-th seeded half of the --subset pool (2k, 2k+1: complementary)'
    p.add_argument('--half', type=int, default=None, metavar='J', help=what)
    pool = '--half must be >= 0 and needs --subset of at least 2 images'
    p.checks.append(lambda c: c.half is not None and (c.half < 0 or (c.subset or 2) < 2) and pool)
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


def load_half(cfg):
    """The Data of --half J of the --subset pool (the pool itself without --half)."""
    pool = train.load_data(cfg)
    return pool if cfg.half is None else half_of(pool, cfg.label_seed, cfg.half)


def main(argv=None):
    train.main(argv, build_parser(), train.Seams(load_data=load_half))


if __name__ == '__main__':
    main()
