"""Correct answers to Chapter 4's exercises written differently from the book's reference.

Each string is a complete exercise cell (imports at the top). The tests exec each one, check that
it passes its check, and paste the first into the student notebook to prove the chapter runs on it.
"""

D_LOSS_SOFTPLUS = '''
import torch.nn.functional as F


def discriminator_loss(D, real, fake):
    """-log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l), both stable."""
    return F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
'''

D_LOSS_ONE_CALL = '''
import torch
import torch.nn.functional as F


def discriminator_loss(D, real, fake):
    """Real and detached fakes through D in one batch; each term still a mean over its own batch."""
    logits = D(torch.cat([real, fake.detach()]))  # (B_real + B_fake,)
    real_logits, fake_logits = logits[:len(real)], logits[len(real):]
    return (-F.logsigmoid(real_logits).mean()) + (-F.logsigmoid(-fake_logits).mean())
'''

G_LOSS_LOGSIGMOID = '''
import torch.nn.functional as F


def generator_loss(D, fake):
    """-mean log D(G(z)) with the stable log-sigmoid."""
    return -F.logsigmoid(D(fake)).mean()
'''

G_LOSS_BCE_SUM_OVER_B = '''
import torch
import torch.nn.functional as F


def generator_loss(D, fake):
    """Summed binary cross-entropy with target 1, divided by the batch size."""
    logits = D(fake)
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="sum") / len(logits)
'''

RF_BACKWARDS = '''
def patchgan_receptive_field(layers):
    """From the output back to the input: r_in = (r_out - 1) * stride + kernel."""
    r = 1
    for kernel, stride in reversed(layers):
        r = (r - 1) * stride + kernel
    return r
'''

RF_FORMULA_FLOAT = '''
import math


def patchgan_receptive_field(layers):
    """The closed form r = 1 + sum_l (k_l - 1) prod_{j<l} s_j, returned as a float (70.0)."""
    strides = [s for _, s in layers]
    return 1.0 + sum((k - 1) * math.prod(strides[:l]) for l, (k, _) in enumerate(layers))
'''

ALTERNATIVES = {
    "gans.discriminator_loss": [D_LOSS_SOFTPLUS, D_LOSS_ONE_CALL],
    "gans.generator_loss": [G_LOSS_LOGSIGMOID, G_LOSS_BCE_SUM_OVER_B],
    "gans.patchgan_receptive_field": [RF_BACKWARDS, RF_FORMULA_FLOAT],
}
