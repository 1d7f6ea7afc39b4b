"""COCO-Stuff 10k, as MMSeg's coco-stuff10k.py (``jseg.data.coco_stuff`` reads the files).

Labels are stored as the converter writes them (0 = unlabeled, 1..171 = the classes): the
pipeline's ``reduce_zero_label`` makes them 0..170, ignore 255.
"""
from jseg.data import coco_stuff

CLASSES = coco_stuff.CLASSES
PALETTE = coco_stuff.PALETTE
REDUCE_ZERO_LABEL = True
splits = coco_stuff.splits_10k
