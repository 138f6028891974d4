"""The ``d2lssd train | evaluate | predict`` commands on a COCO or Pascal VOC data set.

:mod:`~d2lssd.commands.common` holds what the three share: the data
options, the *detector spec* stored in every checkpoint (model, classes,
COCO category ids, input size, anchors) and the model built from it;
each command is a module of :mod:`d2lssd.cli`'s shape (``add_arguments``,
``run``).
"""
