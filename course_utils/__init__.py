"""course_utils -- the shared package of the Advanced Deep Learning Architectures course.

Sub-packages: ``runtime`` (profile, device, seeding, timing), ``data`` (procedural data sets),
``models`` (one concept per module), ``exercises`` (self-grading checks), ``plot``.
"""
__version__ = "0.1.0"
