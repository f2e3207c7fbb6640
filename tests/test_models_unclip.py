"""course_utils.models.unclip: the prior learns a map between two embedding spaces."""
import pytest
import torch
import torch.nn.functional as F

from course_utils.models.unclip import Prior, PriorConfig, as_context, cosine_loss, train_prior


def test_prior_shapes_and_unit_outputs():
    prior = Prior(PriorConfig(embed_dim=8, hidden=16, layers=1))
    out = prior(torch.randn(5, 8))
    assert out.shape == (5, 8)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(5))
    with pytest.raises(ValueError, match="text embeddings"):
        prior(torch.randn(5, 7))


def test_prior_learns_a_rotation():
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))  # a fixed rotation between the two spaces
    text = F.normalize(torch.randn(512, 8, generator=g), dim=-1)
    image = text @ q
    torch.manual_seed(0)
    prior = Prior(PriorConfig(embed_dim=8, hidden=64))
    history = train_prior(prior, text, image, steps=300, batch_size=64, lr=3e-3)
    assert not prior.training
    test = F.normalize(torch.randn(100, 8, generator=g), dim=-1)
    with torch.no_grad():
        cos_prior = F.cosine_similarity(prior(test), test @ q).mean()
    cos_direct = F.cosine_similarity(test, test @ q).mean()
    assert cos_prior > 0.9 > cos_direct + 0.3
    # measured: the mean loss of the last 20 steps is 0.0015 x that of the first 20
    assert history.mean(last=20) < 0.05 * history.mean(first=20)


def test_helpers():
    a = torch.randn(3, 4)
    assert cosine_loss(a, a).abs() < 1e-6
    ctx = as_context(a)
    assert ctx.shape == (3, 1, 4)
    with pytest.raises(ValueError, match="align"):
        train_prior(Prior(PriorConfig(embed_dim=4)), torch.randn(3, 4), torch.randn(2, 4), steps=1)
    with pytest.raises(ValueError, match="expected"):
        as_context(torch.randn(3, 1, 4))
