"""Fréchet distance (against SciPy and closed forms), class coverage, gradient energy, and the judge
whose features they use (trained, and cached once per recipe)."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from course_utils.metrics.generative import (
    class_coverage, frechet_distance, frechet_distance_bootstrap, gaussian_frechet_distance,
    gradient_energy,
)
from course_utils.models.classifier import SmallCNN, SmallCNNConfig
from course_utils.models.judge import load_or_train_judge, train_judge
from course_utils.train import History


def scipy_frechet(a, b):
    # the reference implementation: FID's formula with scipy.linalg.sqrtm
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


@pytest.mark.parametrize("seed, n, d", [(0, 200, 5), (1, 500, 16), (2, 50, 3)])
def test_matches_scipy_sqrtm(seed, n, d):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g)
    a = torch.randn(n, d, generator=g) @ mix
    b = torch.randn(n + 17, d, generator=g) @ (mix + 0.3 * torch.randn(d, d, generator=g)) + 0.5
    assert math.isclose(frechet_distance(a, b), scipy_frechet(a, b), rel_tol=1e-6, abs_tol=1e-8)


def test_closed_form_for_known_gaussians():
    # diagonal covariances commute: FD = ||mu_a - mu_b||^2 + sum_i (sigma_a,i - sigma_b,i)^2
    mu_a, mu_b = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.0])
    s_a, s_b = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 2.0, 1.5])
    expected = ((mu_a - mu_b) ** 2).sum() + ((s_a - s_b) ** 2).sum()
    got = gaussian_frechet_distance(mu_a, torch.diag(s_a**2), mu_b, torch.diag(s_b**2))
    assert math.isclose(got, expected.item(), rel_tol=1e-10)
    # and from samples of those Gaussians: close to the closed form
    g = torch.Generator().manual_seed(0)
    a = mu_a + s_a * torch.randn(200_000, 3, generator=g, dtype=torch.float64)
    b = mu_b + s_b * torch.randn(200_000, 3, generator=g, dtype=torch.float64)
    assert math.isclose(frechet_distance(a, b), expected.item(), rel_tol=0.01)


def test_identity_symmetry_and_translation():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(300, 4, generator=g), torch.randn(300, 4, generator=g) * 2
    assert frechet_distance(a, a) < 1e-8
    assert math.isclose(frechet_distance(a, b), frechet_distance(b, a), rel_tol=1e-8)
    shift = torch.tensor([1.0, 2.0, 0.0, 0.0])
    assert math.isclose(frechet_distance(a, a + shift), 5.0, rel_tol=1e-8)


@pytest.mark.parametrize("distance", [frechet_distance, frechet_distance_bootstrap])
def test_frechet_errors(distance):
    with pytest.raises(ValueError, match="feature sizes"):
        distance(torch.randn(5, 3), torch.randn(5, 4))
    with pytest.raises(ValueError, match="at least 2"):
        distance(torch.randn(5, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match="matrix"):
        frechet_distance(torch.randn(5), torch.randn(5))
    with pytest.raises(ValueError, match="n_boot"):
        frechet_distance_bootstrap(torch.randn(5, 3), torch.randn(5, 3), n_boot=0)


def test_bootstrap_equals_the_loop_over_the_same_resamples():
    g = torch.Generator().manual_seed(4)
    ref = torch.randn(400, 6, generator=g) @ torch.randn(6, 6, generator=g)
    feats = torch.randn(60, 6, generator=g) * 1.5 + 0.3
    boot = frechet_distance_bootstrap(ref, feats, n_boot=25, generator=torch.Generator().manual_seed(9))
    # the documented draw: one (n_boot, N) matrix of row indices from the generator
    idx = torch.randint(60, (25, 60), generator=torch.Generator().manual_seed(9))
    loop = torch.tensor([frechet_distance(ref, feats[i]) for i in idx], dtype=torch.float64)
    assert boot.shape == (25,) and boot.dtype == torch.float64
    torch.testing.assert_close(boot, loop, rtol=1e-9, atol=1e-9)
    assert len(set(boot.tolist())) > 1  # the resamples differ
    # resampling with replacement repeats rows: the resampled FDs sit above the estimate (bias)
    assert boot.mean() > frechet_distance(ref, feats)


def test_class_coverage():
    even = class_coverage(torch.arange(100) % 10, 10)
    assert even.classes_present == 10 and math.isclose(even.evenness, 1.0, rel_tol=1e-9)
    collapsed = class_coverage(torch.full((50,), 3), 10)
    assert collapsed.classes_present == 1 and collapsed.evenness == 0.0 and collapsed.histogram[3] == 1
    two = class_coverage(torch.tensor([0] * 99 + [1]), 4, min_fraction=0.02)  # class 1 has 1 %: not "present"
    assert two.classes_present == 1
    p = torch.tensor([0.99, 0.01])
    assert math.isclose(two.evenness, -(p * p.log()).sum().item() / math.log(4), rel_tol=1e-5)
    assert "classes present" in str(even)
    with pytest.raises(ValueError):
        class_coverage(torch.tensor([0, 10]), 10)
    with pytest.raises(ValueError):
        class_coverage(torch.rand(5), 10)


def test_gradient_energy():
    flat = torch.full((2, 1, 8, 8), 0.5)
    assert torch.equal(gradient_energy(flat), torch.zeros(2))
    stripes = torch.zeros(1, 1, 4, 4)
    stripes[..., ::2] = 1.0  # columns alternate 1, 0: every horizontal difference is ±1
    torch.testing.assert_close(gradient_energy(stripes), torch.tensor([1.0]))
    img = torch.rand(3, 2, 10, 10, generator=torch.Generator().manual_seed(0))
    blurred = torch.nn.functional.avg_pool2d(img, 3, 1, 1, count_include_pad=False)
    assert (gradient_energy(blurred) < gradient_energy(img)).all()
    with pytest.raises(ValueError):
        gradient_energy(torch.rand(8, 8))


def three_classes(n=90):
    # three easily told apart classes: a bright top, a bright bottom, a bright left half
    g = torch.Generator().manual_seed(0)
    images = 0.3 * torch.randn(n, 1, 8, 8, generator=g)
    labels = torch.arange(n) % 3
    images[labels == 0, :, :4] += 1
    images[labels == 1, :, 4:] += 1
    images[labels == 2, :, :, :4] += 1
    return images, labels


def test_judge_features_and_training():
    judge = SmallCNN(SmallCNNConfig(in_channels=1, num_classes=3, width=4))
    x = torch.randn(5, 1, 16, 16)
    assert judge.features(x).shape == (5, 8) and judge(x).shape == (5, 3)
    assert judge.embed(x).shape == (5, 8) and judge.predict(x).shape == (5,)
    with pytest.raises(ValueError):
        judge.features(torch.randn(5, 3, 16, 16))
    images, labels = three_classes()
    torch.manual_seed(0)
    judge = SmallCNN(SmallCNNConfig(num_classes=3, width=4))
    history = train_judge(judge, images, labels, steps=60, batch_size=32, lr=1e-2, device="cpu")
    assert isinstance(history, History) and history.steps == 60
    assert history.mean(last=10) < history.mean(first=10)
    assert not judge.training
    assert (judge.predict(images) == labels).float().mean() > 0.9
    # the metrics take the judge's features and predictions as they come
    feats = judge.embed(images)
    assert feats.shape == (90, 8) and frechet_distance(feats, feats) < 1e-6
    assert class_coverage(judge.predict(images), 3).classes_present == 3
    with pytest.raises(ValueError, match="labels"):
        train_judge(judge, images, labels[:10], steps=1)


def test_train_judge_equals_the_loop_it_replaced():
    """Batches drawn as before (rows, then one shift per batch, from one generator), torch.roll as the
    shift, Adam with a one-cycle schedule: train_judge trains exactly the judge the old loop trained."""
    images, labels = three_classes(40)
    config = SmallCNNConfig(num_classes=3, width=4)
    torch.manual_seed(0)
    reference = SmallCNN(config)
    engine = SmallCNN(config)
    engine.load_state_dict(reference.state_dict())
    steps, lr = 8, 3e-3
    optimizer = torch.optim.Adam(reference.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps)
    g = torch.Generator().manual_seed(4)
    losses = []
    reference.train()
    for _ in range(steps):
        idx = torch.randint(len(images), (16,), generator=g)
        dy, dx = torch.randint(-2, 3, (2,), generator=g).tolist()
        loss = torch.nn.functional.cross_entropy(reference(torch.roll(images[idx], (dy, dx), dims=(-2, -1))), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    history = train_judge(engine, images, labels, steps=steps, batch_size=16, lr=lr, shift=2, seed=4, device="cpu")
    assert history.loss == pytest.approx(losses, rel=1e-5)
    for a, b in zip(reference.state_dict().values(), engine.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_load_or_train_judge_caches_one_judge_per_recipe(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    images, labels = three_classes(30)
    config = SmallCNNConfig(num_classes=3, width=4)
    first, how_first = load_or_train_judge(images, labels, config, steps=5, batch_size=8, device="cpu")
    assert how_first.startswith("trained here") and len(list(tmp_path.glob("judge-*.pt"))) == 1
    again, how_again = load_or_train_judge(images, labels, config, steps=5, batch_size=8, device="cpu")
    assert how_again.startswith("loaded from the cache")
    assert not again.training
    for (name, a), (_, b) in zip(first.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    # the same recipe trained afresh gives the same weights: the cache stores exactly that judge
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "elsewhere"))
    fresh, _ = load_or_train_judge(images, labels, config, steps=5, batch_size=8, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), fresh.state_dict().values()))
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    # any change of recipe -- a training setting, the data -- trains a new judge
    more_steps, how = load_or_train_judge(images, labels, config, steps=6, batch_size=8, device="cpu")
    assert how.startswith("trained here")
    assert not all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), more_steps.state_dict().values()))
    _, how = load_or_train_judge(images, (labels + 1) % 3, config, steps=5, batch_size=8, device="cpu")
    assert how.startswith("trained here") and len(list(tmp_path.glob("judge-*.pt"))) == 3


def test_within_class_diversity():
    from course_utils.metrics.generative import within_class_diversity

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 4
    copies = torch.rand(4, 1, 5, 5, generator=g)[labels]  # every class one fixed image
    assert within_class_diversity(copies, labels) == 0.0
    varied = torch.rand(40, 1, 5, 5, generator=g)
    expected = np.mean([varied[labels == k].double().std(0).mean().item() for k in range(4)])
    assert math.isclose(within_class_diversity(varied, labels), expected, rel_tol=1e-9)
    # a class with a single image is skipped; with none left it is an error
    assert math.isclose(within_class_diversity(varied[:5], torch.tensor([0, 0, 1, 1, 2])),
                        np.mean([varied[:2].double().std(0).mean().item(), varied[2:4].double().std(0).mean().item()]))
    with pytest.raises(ValueError):
        within_class_diversity(varied[:2], torch.tensor([0, 1]))
