"""CT phantoms: deterministic, in range, inside the field of view, and low dose noisier than high dose."""
import numpy as np
import pytest
import torch

from course_utils.data import CTConfig, make_ct_pair, make_ct_pairs, random_ellipse_phantom, shepp_logan, simulate_ct
from course_utils.data.phantoms import ellipse_mask
from course_utils.metrics import psnr


def fov(n):  # scikit-image's rule for radon(circle=True)
    c = n // 2
    i, j = np.ogrid[:n, :n]
    return (i - c) ** 2 + (j - c) ** 2 <= c**2


def test_phantoms_are_deterministic_and_different():
    a, b = random_ellipse_phantom(3), random_ellipse_phantom(3)
    assert np.array_equal(a, b) and not np.array_equal(a, random_ellipse_phantom(4))


@pytest.mark.parametrize("size", [16, 32, 48])
def test_phantom_range_and_field_of_view(size):
    img = random_ellipse_phantom(0, CTConfig(image_size=size))
    assert img.shape == (size, size) and img.dtype == np.float32
    assert img.min() >= 0 and img.max() <= 1 and img.max() > 0.3
    assert (img[~fov(size)] == 0).all()


def test_ellipse_mask_area():
    m = ellipse_mask(200, 0.0, 0.0, 0.5, 0.25, 0.7)
    assert m.mean() == pytest.approx(np.pi * 0.5 * 0.25 / 4, rel=0.02)


def test_shepp_logan_is_bundled_and_in_range():
    img = shepp_logan(32)
    assert img.shape == (32, 32) and 0 <= img.min() and img.max() <= 1 and img.max() > 0.5
    assert (img[~fov(32)] == 0).all()


def test_radon_does_not_warn_about_the_field_of_view():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_ct_pair(0, CTConfig(image_size=32), phantom=shepp_logan(32))
        make_ct_pair(1, CTConfig(image_size=24))


def test_pairs_are_deterministic_and_itemwise():
    cfg = CTConfig(image_size=16, n_angles=24)
    a, b = make_ct_pairs(3, cfg, seed=5), make_ct_pairs(3, cfg, seed=5)
    for k in ("phantom", "low", "high"):
        assert a[k].shape == (3, 1, 16, 16) and a[k].dtype == torch.float32
        assert torch.equal(a[k], b[k])
    assert torch.equal(make_ct_pairs(2, cfg, seed=5)["low"], a["low"][:2])  # item i depends on (seed, i) only


def test_low_dose_is_noisier_and_dose_controls_noise():
    cfg = CTConfig(image_size=32)
    d = make_ct_pairs(8, cfg, seed=0)
    low, high, phantom = psnr(d["low"], d["high"]).mean(), psnr(d["high"], d["phantom"]), psnr(d["low"], d["phantom"])
    assert low < 25  # clearly degraded
    assert (psnr(d["high"], d["phantom"]) > psnr(d["low"], d["phantom"]) + 5).all()
    more = make_ct_pairs(8, CTConfig(image_size=32, low_photons=2000), seed=0)
    assert psnr(more["low"], more["high"]).mean() > low + 5  # 10x the dose: ~10 dB less noise


def test_noise_free_scan_reconstructs_the_phantom():
    img = random_ellipse_phantom(0, CTConfig(image_size=32))
    rec = simulate_ct(img, None, np.random.default_rng(0), n_angles=64)
    assert psnr(torch.from_numpy(rec), torch.from_numpy(img)) > 22
    pair = make_ct_pair(0, CTConfig(image_size=32, high_photons=None))
    assert torch.equal(pair["high"][0], torch.from_numpy(simulate_ct(pair["phantom"][0].numpy(), None, None)))


def test_config_validation():
    with pytest.raises(ValueError):
        CTConfig(image_size=4)
    with pytest.raises(ValueError):
        CTConfig(low_photons=0)
