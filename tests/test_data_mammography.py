"""Phantom mammograms: masks match the pixels, boxes match the masks, imbalance as requested,
sites differ measurably, determinism and errors."""
import numpy as np
import pytest
import torch
from scipy.ndimage import binary_dilation

from course_utils.data.mammography import (BENIGN, MALIGNANT, NORMAL, MammoConfig, SiteConfig, make_mammograms,
                                            mass_crops, subset)


@pytest.fixture(scope="module")
def data():
    return make_mammograms(MammoConfig(n_patients=60, normal_fraction=0.25, malignant_fraction=0.5), seed=0)


def test_shapes_and_ranges(data):
    M = 120
    assert data["images"].shape == (M, 1, 32, 32) and data["images"].dtype == torch.float32
    assert data["masks"].shape == (M, 32, 32) and data["masks"].dtype == torch.bool
    assert len(data["boxes"]) == M and data["label"].shape == data["patient"].shape == (M,)
    assert 0 <= data["images"].min() and data["images"].max() <= 1


def test_masks_match_pixels(data):
    images, masks = data["images"][:, 0], data["masks"]
    for i in range(len(images)):
        if data["label"][i] == NORMAL:
            assert not masks[i].any() and len(data["boxes"][i]) == 0
            continue
        m = masks[i].numpy()
        ring = binary_dilation(m, iterations=3) & ~m
        inside, around = images[i][masks[i]].mean(), images[i][torch.from_numpy(ring)].mean()
        assert inside > around + 0.08, f"image {i}: mass {inside:.3f} vs surroundings {around:.3f}"


def test_boxes_are_mask_boxes(data):
    for mask, box in zip(data["masks"], data["boxes"]):
        if not mask.any():
            continue
        rows, cols = mask.nonzero(as_tuple=True)
        assert box.tolist() == [[cols.min().item(), rows.min().item(), cols.max().item() + 1, rows.max().item() + 1]]


@pytest.mark.parametrize("normal, malignant", [(0.0, 1 / 11), (0.3, 0.5), (0.5, 0.2)])
def test_imbalance_as_requested(normal, malignant):
    P = 110
    d = make_mammograms(MammoConfig(n_patients=P, views=1, normal_fraction=normal, malignant_fraction=malignant), seed=3)
    n_normal = round(normal * P)
    counts = torch.bincount(d["label"], minlength=3).tolist()
    assert counts[NORMAL] == n_normal
    assert counts[MALIGNANT] == round(malignant * (P - n_normal))
    assert counts[BENIGN] == P - n_normal - counts[MALIGNANT]


def test_views_share_the_patient(data):
    assert torch.equal(data["patient"], torch.arange(60).repeat_interleave(2))
    a, b = data["images"][0::2], data["images"][1::2]
    same = (a - b).abs().mean()
    other = (a - b.roll(1, 0)).abs().mean()
    assert same < 0.6 * other  # the two views of one patient are far more alike than two patients


def test_sites_differ_measurably():
    cfg = dict(n_patients=40, normal_fraction=1.0)
    a = make_mammograms(MammoConfig(site="A", **cfg), seed=1)["images"]
    b = make_mammograms(MammoConfig(site="B", **cfg), seed=1)["images"]  # the same anatomy, another scanner
    # intensity histogram: the background (outside the breast) and the mean level move
    assert abs(a.mean() - b.mean()) > 0.1
    hist_a = torch.histc(a, 20, 0, 1) / a.numel()
    hist_b = torch.histc(b, 20, 0, 1) / b.numel()
    assert 0.5 * (hist_a - hist_b).abs().sum() > 0.3  # total-variation distance of the histograms
    # noise/texture: the high-frequency energy (pixel differences) differs
    hf = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()
    assert abs(hf(a) - hf(b)) > 0.005


def test_deterministic_and_seed_dependent():
    cfg = MammoConfig(n_patients=8, normal_fraction=0.25)
    a, b, c = make_mammograms(cfg, seed=5), make_mammograms(cfg, seed=5), make_mammograms(cfg, seed=6)
    assert torch.equal(a["images"], b["images"]) and torch.equal(a["masks"], b["masks"])
    assert not torch.equal(a["images"], c["images"])


def test_crops_and_subset(data):
    crops, y = mass_crops(data, size=16, margin=0.5)
    has = data["label"] > 0
    assert crops.shape == (int(has.sum()), 1, 16, 16)
    assert torch.equal(y, (data["label"][has] == MALIGNANT).long())
    s = subset(data, data["label"] == MALIGNANT)
    assert (s["label"] == MALIGNANT).all() and len(s["boxes"]) == len(s["label"])
    with pytest.raises(ValueError, match="margin"):
        mass_crops(data, margin=-1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(image_size=8), "at least 16"), (dict(malignant_fraction=1.5), "malignant_fraction"),
    (dict(normal_fraction=-0.1), "normal_fraction"), (dict(site="C"), "site"), (dict(n_patients=0), "n_patients"),
    (dict(mass_radius=(0.2, 0.1)), "mass_radius"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MammoConfig(**kwargs)


def test_site_config_errors():
    with pytest.raises(ValueError, match="gamma"):
        SiteConfig("X", gamma=0)


def test_a_mass_that_finds_no_place_raises(monkeypatch):
    from course_utils.data import mammography

    monkeypatch.setattr(mammography, "breast_outline", lambda n, rng: np.zeros((n, n)))  # no breast at all
    with pytest.raises(RuntimeError, match="no place for a mass"):
        make_mammograms(MammoConfig(n_patients=2, normal_fraction=0.0), seed=0)
    make_mammograms(MammoConfig(n_patients=2, normal_fraction=1.0), seed=0)  # normals need no place


def test_context_crops_are_native_and_masked(data):
    from course_utils.data.mammography import context_crops

    window = 20
    full, y = context_crops(data, window=window)
    tight, y2 = context_crops(data, window=window, margin=0.0)
    has = data["label"] > 0
    assert full.shape == tight.shape == (int(has.sum()), 1, window, window) and torch.equal(y, y2)
    # native resolution: the crop is a plain slice of the image (no interpolation)
    i = int(has.nonzero()[0])
    x0, y0, x1, y1 = data["boxes"][i][0].tolist()
    left, top = round((x0 + x1 - window) / 2), round((y0 + y1 - window) / 2)
    padded = torch.nn.functional.pad(data["images"][i, 0], (window,) * 4)
    assert torch.equal(full[0, 0], padded[top + window: top + 2 * window, left + window: left + 2 * window])
    # the tight crop keeps exactly the box's pixels and blanks the rest
    kept = tight[0, 0] != 0
    assert kept.sum() == (x1 - x0) * (y1 - y0) and torch.equal(tight[0, 0][kept], full[0, 0][kept])
    wider, _ = context_crops(data, window=window, margin=2)
    assert ((wider != 0).sum((1, 2, 3)) > (tight != 0).sum((1, 2, 3))).all()
    with pytest.raises(ValueError, match="margin"):
        context_crops(data, margin=-0.1)


def test_margin_signal_settings():
    base = dict(n_patients=6, views=1, malignant_fraction=1.0, image_size=32)
    faint = make_mammograms(MammoConfig(**base), seed=2)
    none = make_mammograms(MammoConfig(spicule_contrast=0.0, **base), seed=2)
    strong = make_mammograms(MammoConfig(spicule_contrast=1.0, spicule_width=1.0, **base), seed=2)
    ring = lambda d: torch.stack([torch.from_numpy(binary_dilation(m.numpy(), iterations=4) & ~binary_dilation(
        m.numpy(), iterations=1)) for m in d["masks"]])  # the tissue just outside each mass  # noqa: E731
    around = lambda d: d["images"][:, 0][ring(d)].mean()  # noqa: E731
    assert torch.equal(none["masks"], strong["masks"])  # the spicules never change the mask
    assert around(none) < around(faint) < around(strong) - 0.02  # brighter surroundings with stronger spicules
    oval = make_mammograms(MammoConfig(shape_cue=0.0, **base), seed=2)
    assert not torch.equal(oval["images"], faint["images"])
    with pytest.raises(ValueError, match="shape_cue"):
        MammoConfig(shape_cue=1.5)
    with pytest.raises(ValueError, match="spicule"):
        MammoConfig(spicule_width=0)


def _box_fill(shape_cue):
    """Per class (benign, malignant): mean mask-box area / mask area, and mean box area, in pixels."""
    d = make_mammograms(MammoConfig(image_size=32, n_patients=80, views=1, malignant_fraction=0.5,
                                    spicule_contrast=0.0, shape_cue=shape_cue), seed=3)
    keep = [i for i, b in enumerate(d["boxes"]) if len(b)]
    b = torch.stack([d["boxes"][i][0] for i in keep])  # (K, 4) xyxy
    box_area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    ratio = box_area / d["masks"][keep].sum((1, 2)).float()
    label = d["label"][keep]
    return {k: (ratio[label == k].mean().item(), box_area[label == k].mean().item()) for k in (BENIGN, MALIGNANT)}


def test_shape_cue_zero_leaves_no_outline_or_box_cue():
    # shape_cue=0 must draw malignant bodies as benign ovals -- outline, mask and box included -- so that
    # without spicules a crop of the box carries no class signal (the control of chapter 8's context demo).
    # An irregular outline fills less of its box: box area / mask area ~1.27 for ovals, ~1.56 irregular.
    irregular, oval = _box_fill(1.0), _box_fill(0.0)
    assert irregular[MALIGNANT][0] - irregular[BENIGN][0] > 0.2  # the cue exists when asked for
    assert abs(oval[MALIGNANT][0] - oval[BENIGN][0]) < 0.06  # and is gone at shape_cue=0
    assert abs(oval[MALIGNANT][1] - oval[BENIGN][1]) < 0.1 * oval[BENIGN][1]  # same box sizes
