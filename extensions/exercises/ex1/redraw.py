"""Exercise 1, question 2: can a network memorize a label that changes? (about 10 s on a CPU)

    .venv/bin/python -m extensions.exercises.ex1.redraw

Trains the small CNN of model.py with one linear head on the random labels alone, its gradient
reaching the features: what train.py's --memorize does, with nothing but your draw_random_labels
(exercise 1) under it. Twice, from the same start: with each sample's r drawn once (data.load),
and with r redrawn for every epoch (a generator of its own). After every epoch it prints the
accuracy on the labels that epoch trained on.
"""

import torch
import torch.nn.functional as F

import data
from model import BACKBONES

EPOCHS, K = 15, 2


def train(redraw):
    d = data.load('fake', '', 0, K, subset=512, fake_like='fashion-mnist')
    torch.manual_seed(0)
    stem, stages, final = BACKBONES['cnn'](1)
    f = torch.nn.Sequential(stem, *stages, final)
    h = torch.nn.Linear(64, K)
    opt = torch.optim.SGD([*f.parameters(), *h.parameters()], lr=0.1, momentum=0.9)
    x = (d.train_x.float() - 255 * d.mean[0]) / (255 * d.std[0])
    r, redraws = d.train_r, torch.Generator().manual_seed(1)
    order = torch.Generator().manual_seed(0)
    accuracies = []
    for _ in range(EPOCHS):
        if redraw:
            r = data.draw_random_labels(len(r), K, redraws)
        hits = 0
        for idx in torch.randperm(len(r), generator=order).split(64):
            logits = h(f(x[idx]).mean((2, 3)))  # the pooled features z, then the head
            loss = F.cross_entropy(logits, r[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            hits += (logits.argmax(1) == r[idx]).sum().item()
        accuracies.append(hits / len(r))
    return accuracies


def main():
    for redraw in (False, True):
        label = 'r redrawn every epoch' if redraw else 'r drawn once        '
        print(label, ' '.join(f'{100 * a:.0f}' for a in train(redraw)), '(% per epoch)')


if __name__ == '__main__':
    main()
