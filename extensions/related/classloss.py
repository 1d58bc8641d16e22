"""Two alternatives to the class cross-entropy that resist memorizing noisy labels.

a = g(z) are the classifier's logits (B, C), p = softmax(a), y the (possibly noisy) class label.

Robust log loss (Patel & Sastry 2021, "Memorization in deep neural networks: does the loss function
matter?"), `--loss rll --rll-alpha α`:
    L_RLL(a, y) = log((1 + α)/α) - log(α + p_y) + (1/(C - 1)) Σ_{j≠y} log(α + p_j).
It is symmetric: Σ_{y=0}^{C-1} L_RLL(a, y) = C·log((1 + α)/α) whatever a, so under uniformly
random labels the expected loss is a constant and gives no gradient to follow: the network cannot
profit from memorizing them. L_RLL is 0 at p = onehot(y).

LIMIT (Harutyunyan et al. 2020, "Improving generalization by controlling label-noise information
in neural network weights"), `--limit --limit-beta β`: the classifier never sees the gradient
of the labels directly. An auxiliary network q of the same architecture (GradientPredictor)
reads x only and gives logits b; the classifier's gradient at its logits is replaced by the
predicted
    ĝ = softmax(sg(a)) - softmax(b)          instead of the true  g = softmax(a) - onehot(y),
and q is trained on
    L_q = ‖ĝ - g‖² + β‖ĝ‖²  (mean over the batch; ĝ - g = onehot(y) - softmax(b) does not depend
                             on a, and β‖ĝ‖² keeps the predicted gradients, i.e. the information
                             about y they carry into the weights, small).
The predicted gradient enters through an autograd function that is the identity forward and hands
a the gradient ĝ/B backward, the gradient of a mean loss over the batch of B, so the classifier's
step has the scale of plain cross-entropy (the reference implementation returns ĝ unscaled and
trains with Adam, which does not care). This is their LIMIT_G with the mean prediction
(sample_from_q off).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from model import BACKBONES


def robust_log_loss(logits, y, alpha):
    """L_RLL, mean over the batch. logits (B, C), y (B,), alpha > 0."""
    assert alpha > 0, 'the robust log loss needs α > 0'
    p = torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), 1)  # (B, C)
    log_ap = torch.log(alpha + p)  # (B, C): log(α + p_j), finite since α > 0
    at_y = log_ap.gather(1, y[:, None])[:, 0]  # (B,)
    others = (log_ap.sum(1) - at_y) / (p.shape[1] - 1)  # (B,): mean over j ≠ y
    return (math.log((1 + alpha) / alpha) - at_y + others).mean()


class PredictedGradient(torch.autograd.Function):
    """Identity forward on the logits a; backward returns ĝ/B for a, whatever loss follows."""

    @staticmethod
    def forward(ctx, logits, g_hat):
        ctx.save_for_backward(g_hat)
        return logits.view_as(logits)

    @staticmethod
    def backward(ctx, grad):
        (g_hat,) = ctx.saved_tensors
        # LIMIT: the classifier learns from the predicted gradient, never from the labels
        return (g_hat / len(g_hat)).to(grad.dtype), None


def limit(logits, q_logits, y, beta, label_smoothing=0.0):
    """(logits whose gradient is ĝ/B, L_q). logits a and q_logits b: (B, C); y: (B,)."""
    dtype = torch.promote_types(logits.dtype, torch.float32)  # bf16 logits: softmax in fp32
    p = torch.softmax(logits.detach().to(dtype), 1)  # (B, C): sg(a), so L_q trains q alone
    target = (
        F.one_hot(y, p.shape[1]).to(dtype) * (1 - label_smoothing) + label_smoothing / p.shape[1]
    )
    g_true = p - target  # (B, C): d CE / da per sample
    g_hat = p - torch.softmax(q_logits.to(dtype), 1)  # (B, C): predicted from x alone
    loss_q = ((g_hat - g_true).pow(2).sum(1) + beta * g_hat.pow(2).sum(1)).mean()
    return PredictedGradient.apply(logits, g_hat.detach()), loss_q


class GradientPredictor(nn.Module):
    """LIMIT's q: a backbone of the same architecture and a Linear(D, C) on its pooled output. It
    sees x only, never y; softmax(q(x)) predicts the label."""

    def __init__(self, arch, in_channels, num_classes, image_size):
        super().__init__()
        stem, stages, final = BACKBONES[arch](in_channels)
        self.body = nn.Sequential(stem, *stages, final)
        with torch.no_grad():
            dim = self.body(torch.zeros(2, in_channels, image_size, image_size)).shape[1]
        self.fc = nn.Linear(dim, num_classes)
        for m in self.modules():  # as model.Net initializes its convolutions
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')

    def forward(self, x):
        return self.fc(self.body(x).mean((2, 3)))  # (B, C): the logits b
