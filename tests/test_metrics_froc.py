"""FROC: a hand-computed case, tie handling, matching, and errors."""
import numpy as np
import pytest
import torch

from course_utils.metrics.froc import froc, froc_from_marks, match_marks


def test_hand_computed_curve():
    # 2 images, 3 lesions. Marks by score: 0.9 hit, 0.8 FP, 0.7 hit, 0.6 FP, 0.5 FP, 0.4 hit
    scores = [0.5, 0.9, 0.4, 0.8, 0.7, 0.6]
    hits = [False, True, True, False, True, False]
    r = froc_from_marks(scores, hits, n_lesions=3, n_images=2)
    # thresholds inf, .9, .8, .7, .6, .5, .4
    assert np.allclose(r.sensitivity, [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 1.0])
    assert np.allclose(r.fppi, [0, 0, 0.5, 0.5, 1.0, 1.5, 1.5])
    assert r.at(0.0) == pytest.approx(1 / 3)
    assert r.at(0.5) == pytest.approx(2 / 3)  # the budget is met exactly: allowed
    assert r.at(1.49) == pytest.approx(2 / 3)
    assert r.at(1.5) == pytest.approx(1.0)
    assert r.cpm([0.5, 1.5]) == pytest.approx((2 / 3 + 1) / 2)


def test_ties_enter_together():
    r = froc_from_marks([0.9, 0.7, 0.7], [True, False, True], n_lesions=2, n_images=1)
    assert np.allclose(r.fppi, [0, 0, 1]) and np.allclose(r.sensitivity, [0, 0.5, 1.0])
    assert r.at(0.5) == pytest.approx(0.5)  # the tied FP comes with the tied hit


def test_match_marks_greedy_by_score_and_duplicates_are_fps():
    targets = [{"boxes": torch.tensor([[0.0, 0, 10, 10]])}, {"boxes": torch.zeros(0, 4)}]
    preds = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [1.0, 1, 10, 10], [20.0, 20, 30, 30]]),
              "scores": torch.tensor([0.5, 0.9, 0.8])},
             {"boxes": torch.tensor([[0.0, 0, 5, 5]]), "scores": torch.tensor([0.3])}]
    scores, hits, n_lesions = match_marks(preds, targets, iou_threshold=0.5)
    assert n_lesions == 1
    assert list(scores) == pytest.approx([0.9, 0.8, 0.5, 0.3])
    assert list(hits) == [True, False, False, False]  # the second mark on the found lesion is a FP
    r = froc(preds, targets, iou_threshold=0.5)
    assert r.at(0.0) == 1.0 and r.n_images == 2


def test_errors():
    with pytest.raises(ValueError, match="lesions"):
        froc_from_marks([0.5], [True], n_lesions=0, n_images=1)
    with pytest.raises(ValueError, match="hit once"):
        froc_from_marks([0.5, 0.4], [True, True], n_lesions=1, n_images=1)
    with pytest.raises(ValueError, match="same length"):
        froc_from_marks([0.5, 0.4], [True], n_lesions=1, n_images=1)
    with pytest.raises(ValueError, match="predictions"):
        froc([], [{"boxes": torch.zeros(0, 4)}])


def test_sensitivity_at_fp_is_one_point_of_the_curve():
    from course_utils.metrics.froc import sensitivity_at_fp

    scores, hits = torch.tensor([0.9, 0.7, 0.7, 0.2]), torch.tensor([True, True, False, True])
    assert sensitivity_at_fp(scores, hits, 3, 1, 0.0) == pytest.approx(1 / 3)  # the tie brings its FP along
    assert sensitivity_at_fp(scores, hits, 3, 1, 1.0) == pytest.approx(1.0)
    assert sensitivity_at_fp(torch.zeros(0), torch.zeros(0, dtype=torch.bool), 2, 1, 1.0) == 0.0
