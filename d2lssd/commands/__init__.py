"""The ``d2lssd train | evaluate | predict | export`` commands (see :mod:`d2lssd.cli`).

``train``, ``evaluate`` and ``predict`` work on a COCO or Pascal VOC data set;
:mod:`~d2lssd.commands.common` holds what the three share: the data
options. The model travels in the checkpoint as a :class:`d2lssd.Detector`
(:func:`d2lssd.load_detector`).
:mod:`~d2lssd.commands.export` writes a checkpoint as ONNX with
:mod:`d2lssd.export`. Each command is a module of :mod:`d2lssd.cli`'s shape
(``add_arguments``, ``run``).
"""
