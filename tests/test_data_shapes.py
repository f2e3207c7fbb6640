"""Tests of course_utils.data.shapes: determinism, truthful labels, boxes, masks and captions."""
import re

import numpy as np
import pytest
import torch

from course_utils.data.shapes import (
    BACKGROUND,
    COLOURS,
    PALETTE,
    SHAPES,
    SIZES,
    ShapesConfig,
    ShapesDataset,
    make_shapes_scene,
)

MULTI = ShapesConfig(min_objects=1, max_objects=4)
CLEAN_MULTI = ShapesConfig(min_objects=1, max_objects=4, noise=0.0)
CLEAN_OVERLAP = ShapesConfig(min_objects=3, max_objects=4, noise=0.0, allow_overlap=True)
OBJECT = re.compile(f"a ({'|'.join(SIZES)}) ({'|'.join(COLOURS)}) ({'|'.join(SHAPES)})")


def scenes(config, n, seed=0):
    dataset = ShapesDataset(config, n, seed)
    return [dataset[i] for i in range(n)]


def assert_scenes_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if key == "caption":
            assert a[key] == b[key]
        else:
            assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def box_centres(boxes):
    return ((boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2)


def parse_caption(caption):
    """Return [(size, colour, shape), ...] in caption order, and the 2-object relation word."""
    objects = OBJECT.findall(caption)
    rebuilt = [f"a {s} {c} {h}" for s, c, h in objects]
    if len(objects) == 1:
        assert caption == rebuilt[0]
        return objects, None
    if len(objects) == 2:
        match = re.fullmatch(f"{rebuilt[0]} (above|below|left of|right of) {rebuilt[1]}", caption)
        assert match, caption
        return objects, match.group(1)
    assert caption == ", ".join(rebuilt[:-1]) + " and " + rebuilt[-1], caption
    return objects, None


# ---------------------------------------------------------------------------------- determinism


def test_same_seed_gives_bit_identical_scenes():
    for seed in range(5):
        assert_scenes_equal(make_shapes_scene(seed, MULTI), make_shapes_scene(seed, MULTI))
    generator_a, generator_b = np.random.default_rng(3), np.random.default_rng(3)
    scene_a, scene_b = make_shapes_scene(generator_a, MULTI), make_shapes_scene(generator_b, MULTI)
    assert_scenes_equal(scene_a, scene_b)


def test_different_seeds_give_different_scenes():
    images = [make_shapes_scene(seed, MULTI)["image"] for seed in range(20)]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert not torch.equal(images[i], images[j])
    a, b = ShapesDataset(MULTI, 5, seed=0), ShapesDataset(MULTI, 5, seed=1)
    assert all(not torch.equal(a[i]["image"], b[i]["image"]) for i in range(5))


def test_dataset_items_do_not_depend_on_access_order():
    dataset = ShapesDataset(MULTI, n=12, seed=7)
    forward = [dataset[i] for i in range(12)]
    backward = [dataset[i] for i in reversed(range(12))][::-1]
    fresh = ShapesDataset(MULTI, n=12, seed=7)
    for i in range(12):
        assert_scenes_equal(forward[i], backward[i])
        assert_scenes_equal(forward[i], fresh[i])
    assert_scenes_equal(dataset[-1], forward[11])
    assert len(dataset) == 12
    with pytest.raises(IndexError):
        dataset[12]


def test_dataset_seed_defaults_to_config_seed():
    config = ShapesConfig(seed=5)
    assert_scenes_equal(ShapesDataset(config, 3)[2], ShapesDataset(ShapesConfig(), 3, seed=5)[2])


# ------------------------------------------------------------------------ types, shapes, ranges


LARGER = ShapesConfig(image_size=48, max_objects=2)


@pytest.mark.parametrize("config", [ShapesConfig(), MULTI, CLEAN_OVERLAP, LARGER])
def test_output_types_shapes_and_ranges(config):
    size = config.image_size
    counts = set()
    for scene in scenes(config, 40):
        k = len(scene["labels"])
        counts.add(k)
        assert config.min_objects <= k <= config.max_objects
        expected = {
            "image": (torch.float32, (3, size, size)),
            "boxes": (torch.float32, (k, 4)),
            "labels": (torch.int64, (k,)),
            "colours": (torch.int64, (k,)),
            "sizes": (torch.int64, (k,)),
            "masks": (torch.bool, (k, size, size)),
        }
        for key, (dtype, shape) in expected.items():
            assert scene[key].dtype == dtype, key
            assert tuple(scene[key].shape) == shape, key
        assert isinstance(scene["caption"], str)
        assert 0.0 <= scene["image"].min() and scene["image"].max() <= 1.0
        assert ((0 <= scene["labels"]) & (scene["labels"] < len(SHAPES))).all()
        assert ((0 <= scene["colours"]) & (scene["colours"] < len(COLOURS))).all()
        assert ((0 <= scene["sizes"]) & (scene["sizes"] < len(SIZES))).all()
        assert ((scene["boxes"] >= 0) & (scene["boxes"] <= size)).all()
    assert counts == set(range(config.min_objects, config.max_objects + 1))  # every count occurs


def test_config_restricts_names():
    config = ShapesConfig(
        shapes=["triangle"], colours=("cyan", "red"), sizes=("large",), max_objects=3
    )
    for scene in scenes(config, 20):
        assert set(scene["labels"].tolist()) == {SHAPES.index("triangle")}
        assert set(scene["colours"].tolist()) <= {COLOURS.index("cyan"), COLOURS.index("red")}
        assert set(scene["sizes"].tolist()) == {SIZES.index("large")}


# ------------------------------------------------------------------ pixels, masks, boxes agree


@pytest.mark.parametrize("config", [CLEAN_MULTI, CLEAN_OVERLAP])
def test_masks_are_exactly_the_coloured_pixels_without_noise(config):
    for scene in scenes(config, 60):
        image, masks = scene["image"].numpy(), scene["masks"].numpy()  # (3, H, W), (K, H, W)
        assert (masks.sum(axis=0) <= 1).all(), "a pixel belongs to two objects"
        assert masks.any(axis=(1, 2)).all(), "an object is completely hidden"
        for mask, colour in zip(masks, scene["colours"]):
            assert (image[:, mask] == PALETTE[colour][:, None]).all()
        background = ~masks.any(axis=0)
        assert (image[:, background] == BACKGROUND[:, None]).all()


def test_noisy_pixels_are_their_objects_colour_up_to_noise():
    config = ShapesConfig(min_objects=1, max_objects=4, noise=0.05)
    residuals = []
    for scene in scenes(config, 60):
        image, masks = scene["image"].numpy(), scene["masks"].numpy()
        owner = np.where(masks.any(axis=0), masks.argmax(axis=0), -1)  # (H, W), -1 = background
        table = np.vstack([BACKGROUND, PALETTE[scene["colours"].numpy()]])  # (K + 1, 3)
        clean = table[owner + 1].transpose(2, 0, 1)  # (3, H, W)
        residuals.append((image - clean).ravel())
        # every pixel is still nearest to the colour it was painted with
        candidates = np.vstack([BACKGROUND, PALETTE])  # (7, 3): background, then the palette
        pixels = image.reshape(3, -1).T  # (H*W, 3)
        nearest = ((pixels[:, None, :] - candidates[None]) ** 2).sum(-1).argmin(-1)  # (H*W,)
        painted = np.where(owner >= 0, scene["colours"].numpy()[owner] + 1, 0)  # (H, W)
        assert (nearest == painted.ravel()).all()
    residuals = np.concatenate(residuals)
    assert 0.8 * config.noise < residuals.std() < 1.1 * config.noise
    assert abs(residuals.mean()) < 0.1 * config.noise


def test_boxes_are_the_tight_bounds_of_the_masks():
    for config in (MULTI, CLEAN_OVERLAP):
        for scene in scenes(config, 60):
            for box, mask in zip(scene["boxes"], scene["masks"].numpy()):
                rows, cols = np.nonzero(mask)
                # pixel j spans [j, j+1), so a box ends one past the last pixel
                expected = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
                assert box.tolist() == [float(v) for v in expected]


def test_labels_match_the_drawn_shapes():
    """Without overlap each mask is the whole shape, as tall as it is wide: squares fill their
    box, circles about pi/4 of it and upward triangles about half; a triangle widens from top to
    bottom, while a circle is widest in the middle."""
    fills = {name: [] for name in SHAPES}
    for scene in scenes(CLEAN_MULTI, 150):
        for box, mask, label in zip(scene["boxes"], scene["masks"], scene["labels"]):
            x0, y0, x1, y1 = box.int().tolist()
            crop = mask[y0:y1, x0:x1]
            name = SHAPES[label]
            fills[name].append(crop.float().mean().item())
            height, width = crop.shape
            assert abs(height - width) <= 1  # as tall as wide, up to pixel rounding
            widths = crop.sum(dim=1)  # (rows,) pixels per row, top to bottom
            if name == "triangle":  # widens downwards to a full-width base
                assert (widths.diff() >= 0).all() and widths[-1] == crop.shape[1]
                assert widths[0] <= widths[-1] / 2
            if name == "circle":  # widest in the middle
                assert widths[0] < widths.max() and widths[-1] < widths.max()
    assert min(fills["square"]) == max(fills["square"]) == 1.0
    assert 0.55 < min(fills["circle"]) and max(fills["circle"]) < 0.95
    assert 0.45 < min(fills["triangle"]) and max(fills["triangle"]) < 0.70
    assert np.mean(fills["triangle"]) < np.mean(fills["circle"]) - 0.15


def test_small_objects_are_smaller_than_large_ones():
    widths = {name: [] for name in SIZES}
    for scene in scenes(MULTI, 150):
        for box, size in zip(scene["boxes"], scene["sizes"]):
            widths[SIZES[size]].append((box[2] - box[0]).item())
    assert max(widths["small"]) < min(widths["large"])


def test_colours_are_the_named_colours():
    """The palette entry for a name has that name's bright channels (e.g. magenta = red + blue)."""
    channels = {
        "red": {0}, "green": {1}, "blue": {2}, "yellow": {0, 1}, "magenta": {0, 2}, "cyan": {1, 2}
    }
    for name, rgb in zip(COLOURS, PALETTE):
        assert {c for c in range(3) if rgb[c] > 0.6} == channels[name]
    distances = np.linalg.norm(PALETTE[:, None] - PALETTE[None], axis=-1) + np.eye(len(PALETTE))
    assert distances.min() >= 0.5
    assert np.linalg.norm(PALETTE - BACKGROUND, axis=1).min() >= 0.5 and BACKGROUND.max() < 0.2


# ----------------------------------------------------------------------------- overlap option


def boxes_intersect(a, b):
    return bool(max(a[0], b[0]) < min(a[2], b[2]) and max(a[1], b[1]) < min(a[3], b[3]))


def test_without_overlap_objects_are_apart():
    config = ShapesConfig(min_objects=4, max_objects=4, noise=0.0)
    for scene in scenes(config, 60):
        boxes = scene["boxes"].tolist()
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                assert not boxes_intersect(boxes[i], boxes[j])


def test_with_overlap_objects_overlap():
    config = ShapesConfig(min_objects=4, max_objects=4, noise=0.0, allow_overlap=True)
    overlapping = 0
    for scene in scenes(config, 60):
        boxes = scene["boxes"].tolist()
        pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
        overlapping += any(boxes_intersect(boxes[i], boxes[j]) for i, j in pairs)
    assert overlapping >= 30


def test_later_objects_are_drawn_on_top():
    """Objects are listed in drawing order, so the last one is never hidden: a square drawn
    last fills its box, while squares drawn earlier are sometimes cut."""
    config = ShapesConfig(min_objects=4, max_objects=4, noise=0.0, allow_overlap=True)
    last_squares, cut_earlier_squares = 0, 0
    for scene in scenes(config, 120):
        objects = zip(scene["boxes"], scene["masks"], scene["labels"])
        for k, (box, mask, label) in enumerate(objects):
            x0, y0, x1, y1 = box.int().tolist()
            if SHAPES[label] != "square":
                continue
            whole = bool(mask[y0:y1, x0:x1].all()) and abs((x1 - x0) - (y1 - y0)) <= 1
            if k == 3:
                last_squares += 1
                assert whole
            else:
                cut_earlier_squares += not whole
    assert last_squares >= 10 and cut_earlier_squares >= 10


def test_overcrowded_scene_raises():
    config = ShapesConfig(image_size=16, min_objects=8, max_objects=8, sizes=("large",))
    with pytest.raises(RuntimeError, match="allow_overlap"):
        make_shapes_scene(0, config)


# ------------------------------------------------------------------------------------ captions


def test_captions_name_the_objects_truthfully():
    for scene in scenes(MULTI, 150):
        objects, _ = parse_caption(scene["caption"])
        truth = [
            (SIZES[z], COLOURS[c], SHAPES[s])
            for z, c, s in zip(scene["sizes"], scene["colours"], scene["labels"])
        ]
        assert sorted(objects) == sorted(truth)
        if len(truth) in (1, 2):
            assert objects == truth  # listed in drawing order
        else:  # listed left to right
            cx, _ = box_centres(scene["boxes"])
            order = torch.argsort(cx).tolist()
            by_box = [truth[k] for k in order]
            # boxes are rounded to whole pixels, so objects whose box centres are within a
            # pixel of each other may appear in either order
            for p, obj in enumerate(objects):
                near = [q for q in range(len(order)) if abs(cx[order[q]] - cx[order[p]]) <= 1.0]
                assert any(by_box[q] == obj for q in near), (scene["caption"], cx)


def test_two_object_relations_agree_with_the_boxes():
    config = ShapesConfig(min_objects=2, max_objects=2)
    seen = set()
    for scene in scenes(config, 200):
        _, word = parse_caption(scene["caption"])
        seen.add(word)
        cx, cy = box_centres(scene["boxes"])
        dx, dy = (cx[0] - cx[1]).item(), (cy[0] - cy[1]).item()
        expected_sign = {"above": dy < 0, "below": dy > 0, "left of": dx < 0, "right of": dx > 0}
        assert expected_sign[word], (scene["caption"], dx, dy)
        vertical = word in ("above", "below")
        along, across = (abs(dy), abs(dx)) if vertical else (abs(dx), abs(dy))
        assert along >= 3.0  # objects are clearly apart along the named axis
        assert along >= across - 2.0  # and it is the axis of larger separation (rounding aside)
    assert seen == {"above", "below", "left of", "right of"}


# ------------------------------------------------------------------------------- bad configs


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": 8}, "image_size=8 is too small"),
        ({"shapes": ("circle", "hexagon")}, "unknown name 'hexagon' in shapes"),
        ({"colours": ("purple",)}, "unknown name 'purple' in colours"),
        ({"sizes": ("huge",)}, "unknown name 'huge' in sizes"),
        ({"shapes": "circle"}, "sequence of names"),
        ({"shapes": ()}, "shapes is empty"),
        ({"colours": ("red", "red")}, "twice"),
        ({"min_objects": 3, "max_objects": 2}, "min_objects=3 is larger than max_objects=2"),
        ({"min_objects": 0}, "at least 1 object"),
        ({"noise": -0.1}, "cannot be negative"),
        ({"min_visible": 0.0}, "min_visible"),
    ],
)
def test_bad_config_raises_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ShapesConfig(**kwargs)


def test_pair_scenes_share_a_cell_or_not_as_asked_and_never_touch():
    import numpy as np

    from course_utils.data.shapes import make_pair_scene
    shared_counts = {True: 0, False: 0}
    for i in range(40):
        same = i % 2 == 0
        scene = make_pair_scene(i, same_cell=same, image_size=48, cell=16)
        b = scene["boxes"]
        assert b.shape == (2, 4) and scene["labels"].shape == (2,) and scene["image"].shape == (3, 48, 48)
        assert not (scene["masks"][0] & scene["masks"][1]).any()
        gap_x = max(b[0, 0], b[1, 0]) - min(b[0, 2], b[1, 2])
        gap_y = max(b[0, 1], b[1, 1]) - min(b[0, 3], b[1, 3])
        assert max(gap_x, gap_y) >= 0  # the boxes do not overlap: the objects never touch
        cells = ((b[:, :2] + b[:, 2:]) / 2 / 16).floor()
        shared_counts[same] += bool((cells[0] == cells[1]).all())
    assert shared_counts[True] >= 18 and shared_counts[False] <= 2  # box centres may move under a pixel
    again = make_pair_scene(3, same_cell=False)
    assert np.array_equal(again["image"].numpy(), make_pair_scene(3, same_cell=False)["image"].numpy())
