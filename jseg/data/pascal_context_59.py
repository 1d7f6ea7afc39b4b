"""Pascal Context 59 (the 59 classes, background ignored), as MMSeg's PascalContextDataset59.

The files and stored labels of ``pascal_context`` (0 = background, 1..59): the pipeline's
``reduce_zero_label`` (0 -> 255, then -1) makes the classes 0..58, as MMSeg's
``pascal_context_59.py`` does.
"""
from jseg.data import pascal_context

CLASSES = pascal_context.CLASSES[1:]
PALETTE = pascal_context.PALETTE[1:]
REDUCE_ZERO_LABEL = True
splits = pascal_context.splits
