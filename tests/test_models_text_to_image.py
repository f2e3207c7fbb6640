"""course_utils.models.text_to_image: classifier-free guided sampling with any guidance function."""
import torch

from course_utils.models.diffusion import guided_eps
from course_utils.models.text_to_image import guided


def test_guided_wrapper_matches_guided_eps_and_uses_the_given_formula():
    torch.manual_seed(0)
    w = torch.randn(4, 4)
    model_fn = lambda x, t, c: x @ w + c + t[:, None].float()  # noqa: E731  (a toy ε_θ)
    x, t, c, null = torch.randn(3, 4), torch.tensor([1, 2, 3]), torch.randn(3, 4), torch.zeros(1, 4)
    for s in (0.0, 1.0, 2.5):
        torch.testing.assert_close(guided(model_fn, null, s)(x, t, c),
                                   guided_eps(model_fn, x, t, c, null.expand(3, 4), s))
    calls = []
    guided(model_fn, null, 3.0, guidance=lambda u, k, s: calls.append(s) or u)(x, t, c)
    assert calls == [3.0]
