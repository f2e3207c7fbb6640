"""PSNR, SSIM and Dice: oracle tests against scikit-image, and edge cases."""
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from course_utils.metrics import dice, psnr, ssim


def pair(seed, shape=(32, 32), noise=0.1):
    rng = np.random.default_rng(seed)
    ref = rng.random(shape)
    return np.clip(ref + noise * rng.standard_normal(shape), 0, 1), ref


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_matches_skimage(seed):
    x, ref = pair(seed)
    expected = peak_signal_noise_ratio(ref, x, data_range=1.0)
    assert psnr(torch.from_numpy(x), torch.from_numpy(ref)).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("seed, shape, noise, data_range", [(0, (32, 32), 0.1, 1.0), (1, (20, 27), 0.3, 1.0),
                                                            (2, (16, 16), 0.05, 2.0), (3, (64, 48), 0.5, 1.0)])
def test_ssim_matches_skimage(seed, shape, noise, data_range):
    x, ref = pair(seed, shape, noise)
    expected = structural_similarity(ref * data_range, x * data_range, data_range=data_range)
    got = ssim(torch.from_numpy(x * data_range), torch.from_numpy(ref * data_range), data_range=data_range)
    assert got.item() == pytest.approx(expected, abs=1e-10)


def test_batched_metrics_are_per_image():
    xs, refs = zip(*(pair(s) for s in range(3)))
    x, ref = torch.tensor(np.stack(xs))[:, None], torch.tensor(np.stack(refs))[:, None]  # (3, 1, 32, 32)
    p, s = psnr(x, ref), ssim(x, ref)
    assert p.shape == s.shape == (3,)
    for i in range(3):
        assert s[i].item() == pytest.approx(structural_similarity(refs[i], xs[i], data_range=1.0), abs=1e-10)
        assert p[i].item() == pytest.approx(peak_signal_noise_ratio(refs[i], xs[i], data_range=1.0), rel=1e-10)


def test_ssim_of_identical_images_is_one_and_drops_with_noise():
    _, ref = pair(0)
    r = torch.from_numpy(ref)
    assert ssim(r, r).item() == pytest.approx(1.0)
    assert ssim(torch.from_numpy(pair(0, noise=0.3)[0]), r) < ssim(torch.from_numpy(pair(0, noise=0.05)[0]), r)


def test_dice():
    p = torch.zeros(3, 4, 4, dtype=torch.bool)
    t = torch.zeros(3, 4, 4, dtype=torch.bool)
    p[0, :2], t[0, :2] = True, True  # perfect
    p[1, :2], t[1, 1:3] = True, True  # 4 of 8 + 8 overlap -> 2*4/16
    d = dice(p, t)  # image 2: both empty -> 1
    torch.testing.assert_close(d, torch.tensor([1.0, 0.5, 1.0]), atol=1e-6, rtol=0)
    assert dice(p[:, None].expand(3, 2, 4, 4), t[:, None].expand(3, 2, 4, 4)).shape == (3, 2)
    assert dice(torch.ones(1, 4, 4), torch.zeros(1, 4, 4)).item() < 1e-6
