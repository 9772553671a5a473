"""segmentlab: experiment-tracking framework for e-commerce customer segmentation."""

__version__ = "0.1.0"
