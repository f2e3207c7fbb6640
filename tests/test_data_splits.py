"""Patient-level splits (Chapter 8b): a partition of the images, no patient on both sides, seeded."""
import pytest
import torch

from course_utils.data.splits import patient_split


def test_partition_no_shared_patient_and_fraction():
    patients = torch.tensor([7, 3, 7, 3, 12, 5, 5, 40, 12, 9])  # 6 patients, any ids, any order
    train, test = patient_split(patients, 0.5, seed=0)
    assert train.dtype == test.dtype == torch.long
    assert torch.equal(torch.cat([train, test]).sort().values, torch.arange(len(patients)))
    assert torch.equal(train, train.sort().values) and torch.equal(test, test.sort().values)
    assert not set(patients[train].tolist()) & set(patients[test].tolist())
    assert len(set(patients[test].tolist())) == 3  # round(0.5 * 6)


def test_seeded_and_seed_dependent():
    patients = torch.arange(40).repeat_interleave(2)
    a, b = patient_split(patients, 0.25, seed=1), patient_split(patients, 0.25, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[1], patient_split(patients, 0.25, seed=2)[1])


def test_passes_the_exercise_check():
    from course_utils.exercises import run_check
    assert run_check("medical.patient_split", patient_split).passed


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="one id per image"):
        patient_split(torch.zeros(2, 3), 0.5, 0)
    with pytest.raises(ValueError, match="test_fraction"):
        patient_split(torch.arange(4), 1.5, 0)
