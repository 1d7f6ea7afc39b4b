"""ISPRS Potsdam, tiled as MMSeg's tools/dataset_converters/potsdam.py does: see jseg.data.isprs.

Source: the folder holding ``2_Ortho_RGB.zip`` and ``5_Labels_all_noBoundary.zip`` (zipped or
not). Splits: train (24 areas, 3456 tiles of 512 x 512), val (the other 14, 2016 tiles).
"""
from jseg.data.isprs import CLASSES, PALETTE, REDUCE_ZERO_LABEL  # noqa: F401
from jseg.data.isprs import potsdam_splits as splits  # noqa: F401
