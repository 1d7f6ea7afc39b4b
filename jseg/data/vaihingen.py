"""ISPRS Vaihingen, tiled as MMSeg's tools/dataset_converters/vaihingen.py does: see
jseg.data.isprs (MMSeg's ISPRSDataset).

Source: the folder holding ``ISPRS_semantic_labeling_Vaihingen.zip`` and
``ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip`` (zipped or not). Splits:
train (16 areas, 344 tiles), val (the other 17, 398 tiles), as MMSeg documents.
"""
from jseg.data.isprs import CLASSES, PALETTE, REDUCE_ZERO_LABEL  # noqa: F401
from jseg.data.isprs import vaihingen_splits as splits  # noqa: F401
