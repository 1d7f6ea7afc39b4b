"""Dark Zurich's val set (evaluation only), as MMSeg's DarkZurichDataset: see
jseg.data.night_driving.

Source: ``Dark_Zurich_val_anon.zip`` (or its folder, or the folder holding it).
"""
from jseg.data.night_driving import CLASSES, PALETTE  # noqa: F401
from jseg.data.night_driving import dark_zurich_splits as splits  # noqa: F401
