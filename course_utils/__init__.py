"""course_utils -- the shared package of the Advanced Deep Learning Architectures course.

Sub-packages: ``runtime`` (profile, device, seeding, timing), ``data`` (procedural data sets),
``models`` (one concept per module), ``exercises`` (self-grading checks), ``plot``.
"""
import os

# PyTorch's OpenMP worker threads spin while they wait, by default. When the machine is busy
# (two notebooks, a build next to a test run) the spinning threads starve each other: a
# training loop measured 13x slower. Sleeping waits cost little. The variable is read when
# torch loads its OpenMP runtime, so it takes effect when course_utils is imported *before*
# torch -- which is why every chapter's first import is course_utils.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
