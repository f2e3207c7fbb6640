"""course_utils.metrics.detection cross-checked against pycocotools' COCOeval (the reference)."""
import contextlib
import io

import numpy as np
import pytest
import torch

from course_utils.metrics.detection import average_precision, evaluate_detections

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def coco_reference(predictions, targets, num_classes):
    """mAP@[.5:.95], mAP@0.5 and the (T, K) AP table computed by pycocotools."""
    images, annotations, results = [], [], []
    for i, (p, t) in enumerate(zip(predictions, targets)):
        images.append({"id": i + 1, "width": 100, "height": 100})
        for b, l in zip(t["boxes"].tolist(), t["labels"].tolist()):
            w, h = b[2] - b[0], b[3] - b[1]
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": l + 1,
                                "bbox": [b[0], b[1], w, h], "area": w * h, "iscrowd": 0})
        for b, s, l in zip(p["boxes"].tolist(), p["scores"].tolist(), p["labels"].tolist()):
            results.append({"image_id": i + 1, "category_id": l + 1, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                            "score": s})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"info": {}, "images": images, "annotations": annotations,
                      "categories": [{"id": k + 1, "name": str(k)} for k in range(num_classes)]}
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"][:, :, :, 0, -1]  # (T, R, K), area all, maxDets 100
    ap = np.where((precision > -1).all(1), precision.mean(1), np.nan)  # (T, K)
    return ev.stats[0], ev.stats[1], ap


def random_case(seed, n_images=12, num_classes=3, jitter=3.0, fp_rate=1.0, empty_images=False):
    g = torch.Generator().manual_seed(seed)
    preds, targets = [], []
    for i in range(n_images):
        k = int(torch.randint(0 if empty_images else 1, 5, (1,), generator=g))
        xy = torch.rand(k, 2, generator=g) * 70
        gt = torch.cat([xy, xy + 5 + torch.rand(k, 2, generator=g) * 25], 1)
        labels = torch.randint(0, num_classes, (k,), generator=g)
        keep = torch.rand(k, generator=g) < 0.8  # some objects are missed
        found = gt[keep] + torch.randn(int(keep.sum()), 4, generator=g) * jitter
        dup = found[: max(1, len(found) // 2)] + torch.randn(min(len(found), max(1, len(found) // 2)), 4, generator=g)
        n_fp = int(torch.poisson(torch.tensor(fp_rate * 2.0), generator=g))
        xy = torch.rand(n_fp, 2, generator=g) * 70
        fp = torch.cat([xy, xy + 5 + torch.rand(n_fp, 2, generator=g) * 25], 1)
        boxes = torch.cat([found, dup, fp])
        boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        plabels = torch.cat([labels[keep], labels[keep][: len(dup)], torch.randint(0, num_classes, (n_fp,), generator=g)])
        flip = torch.rand(len(plabels), generator=g) < 0.1  # a few wrong classes
        plabels = torch.where(flip, (plabels + 1) % num_classes, plabels)
        preds.append({"boxes": boxes, "scores": torch.rand(len(boxes), generator=g), "labels": plabels})
        targets.append({"boxes": gt, "labels": labels})
    return preds, targets


@pytest.mark.parametrize("seed, kwargs", [
    (0, {}), (1, {"jitter": 1.0}), (2, {"jitter": 6.0, "fp_rate": 3.0}), (3, {"num_classes": 5, "empty_images": True}),
    (4, {"n_images": 30, "jitter": 2.0}), (5, {"num_classes": 1, "fp_rate": 0.0}),
])
def test_matches_pycocotools_on_random_inputs(seed, kwargs):
    num_classes = kwargs.get("num_classes", 3)
    preds, targets = random_case(seed, **kwargs)
    ours = evaluate_detections(preds, targets, num_classes=num_classes)
    ref_map, ref_map50, ref_ap = coco_reference(preds, targets, num_classes)
    assert ours.map == pytest.approx(ref_map, abs=1e-9)
    assert ours.map50 == pytest.approx(ref_map50, abs=1e-9)
    np.testing.assert_allclose(ours.ap, ref_ap, atol=1e-9)
    assert 0.0 < ours.map < ours.map50 < 1.0  # a meaningful, non-trivial case


def test_edge_cases_match_pycocotools():
    box = torch.tensor([[10.0, 10.0, 30.0, 30.0]])
    perfect = [{"boxes": box, "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}]
    truth = [{"boxes": box, "labels": torch.tensor([0])}]
    res = evaluate_detections(perfect, truth, num_classes=1)
    assert res.map == pytest.approx(1.0) and res.map50 == pytest.approx(1.0)
    # a class with ground truth but no detections (AP 0) and a class with detections but no ground truth (excluded)
    preds = [{"boxes": torch.cat([box, box + 40]), "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([0, 2])},
             {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}]
    targets = [{"boxes": box, "labels": torch.tensor([0])},
               {"boxes": torch.cat([box, box + 5]), "labels": torch.tensor([1, 0])}]
    ours = evaluate_detections(preds, targets, num_classes=3)
    ref_map, ref_map50, ref_ap = coco_reference(preds, targets, 3)
    np.testing.assert_allclose(ours.ap, ref_ap, atol=1e-9)
    assert np.isnan(ours.ap[:, 2]).all() and (ours.ap[:, 1] == 0).all()
    assert ours.map == pytest.approx(ref_map) and ours.map50 == pytest.approx(ref_map50)
    # IoU exactly at a threshold: [0,0,10,10] vs [0,0,10,20] has IoU 0.5 -> a match at 0.5 only
    half = evaluate_detections([{"boxes": torch.tensor([[0.0, 0, 10, 10]]), "scores": torch.tensor([1.0]),
                                 "labels": torch.tensor([0])}],
                               [{"boxes": torch.tensor([[0.0, 0, 10, 20]]), "labels": torch.tensor([0])}])
    assert half.map50 == pytest.approx(1.0) and half.map == pytest.approx(0.1)


def test_average_precision_and_errors():
    assert average_precision([], []) == 0.0
    assert average_precision([0.5, 1.0], [1.0, 1.0]) == pytest.approx(1.0)
    # half the objects found at precision 1, never the rest: 51 of the 101 recall levels reached
    assert average_precision([0.5], [1.0]) == pytest.approx(51 / 101)
    with pytest.raises(ValueError, match="one dict per image"):
        evaluate_detections([{}], [])
    with pytest.raises(ValueError, match="lacks"):
        evaluate_detections([{"boxes": torch.zeros(0, 4)}], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}])
