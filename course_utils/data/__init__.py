"""Procedural data sets: seeded, deterministic, generated on the spot (no downloads).

* ``shapes`` -- RGB scenes of coloured circles, squares and triangles with labels, boxes,
  masks and captions (classification, detection, segmentation, CLIP, text-to-image).
* ``canvas`` -- a miniature "NVIDIA Canvas": painted label maps of shapes scenes and the scenes
  rendered as sky, balls, brick walls and trees (pix2pix, Chapter 4).
* ``captions`` -- one-object shapes scenes with their captions, some (colour, shape) pairs held out
  (CLIP, captioning, text-to-image).
* ``corpus`` -- a generated English-like text corpus with gender, royalty, plural and
  country-capital structure (word2vec analogies, masked-token prediction).
* ``phantoms`` -- CT phantoms with low-dose / high-dose pairs (radon, Poisson counts, filtered
  back-projection).
* ``mammography`` -- phantom mammograms: tissue texture, benign and malignant masses with boxes and
  masks, class imbalance, acquisition sites that differ (Chapter 8).
* ``chest_xray`` -- phantom chest X-rays with and without opacities, for scarce-label learning (Chapter 8).
* ``opt_in`` -- ``online()``: real data sets and pretrained weights load only with ``COURSE_ONLINE=1``.
* ``fashion_mnist`` -- the lecture's Fashion-MNIST, opt-in: reads the IDX files from a local folder,
  downloads them only with ``COURSE_ONLINE=1``.
* ``medmnist`` -- MedMNIST (BreastMNIST, PneumoniaMNIST) from the official ``.npz`` files, opt-in.
* ``splits`` -- ``patient_split``: train/test indices with every patient's images on one side.
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
    make_shapes_scene,
)
from course_utils.data.canvas import SKETCH_COLOURS, make_canvas_pairs, render_canvas
from course_utils.data.captions import HELD_OUT, shapes_caption_data
from course_utils.data.phantoms import (
    CTConfig,
    make_ct_pair,
    make_ct_pairs,
    random_ellipse_phantom,
    shepp_logan,
    simulate_ct,
)
from course_utils.data.fashion_mnist import CLASSES as FASHION_MNIST_CLASSES
from course_utils.data.fashion_mnist import load_fashion_mnist, read_idx
from course_utils.data.medmnist import load_medmnist
from course_utils.data.opt_in import DatasetNotAvailable, online
from course_utils.data.mammography import MammoConfig, SiteConfig, SITES, make_mammograms, mass_crops
from course_utils.data.chest_xray import ChestXrayConfig, make_chest_xrays
from course_utils.data.splits import patient_split
