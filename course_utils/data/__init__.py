"""Procedural data sets: seeded, deterministic, generated on the spot (no downloads).

* ``shapes`` -- RGB scenes of coloured circles, squares and triangles with labels, boxes,
  masks and captions (classification, detection, segmentation, CLIP, text-to-image).
* ``corpus`` -- a generated English-like text corpus with gender, royalty, plural and
  country-capital structure (word2vec analogies, masked-token prediction).
* ``phantoms`` -- CT phantoms with low-dose / high-dose pairs (radon, Poisson counts, filtered
  back-projection); mammography phantoms are planned.
* ``fashion_mnist`` -- the lecture's Fashion-MNIST, opt-in: reads the IDX files from a local folder,
  downloads them only with ``COURSE_ONLINE=1``.
"""
from course_utils.data.corpus import (
    CorpusConfig,
    Vocab,
    analogies,
    encode_corpus,
    make_corpus,
    relation_pairs,
)
from course_utils.data.shapes import (
    COLOURS,
    SHAPES,
    SIZES,
    ShapesConfig,
    ShapesDataset,
    class_names,
    collate_detection,
    make_shapes_classification,
    make_shapes_scene,
)
from course_utils.data.phantoms import (
    CTConfig,
    CTPhantomDataset,
    make_ct_pair,
    make_ct_pairs,
    random_ellipse_phantom,
    shepp_logan,
    simulate_ct,
)
from course_utils.data.fashion_mnist import CLASSES as FASHION_MNIST_CLASSES
from course_utils.data.fashion_mnist import DatasetNotAvailable, load_fashion_mnist, read_idx
