"""COCO-Stuff 164k, as MMSeg's coco-stuff164k.py (``jseg.data.coco_stuff`` reads the files).

Labels are the converter's train ids 0..170, 255 = unlabeled (ignored); no zero reduction.
"""
from jseg.data import coco_stuff

CLASSES = coco_stuff.CLASSES
PALETTE = coco_stuff.PALETTE
splits = coco_stuff.splits_164k
