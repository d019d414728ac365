"""Luigi pipeline: Download -> BuildVocab -> EncodeShards -> Train -> Sample -> Evaluate.

    luigi --module pipeline Evaluate --local-scheduler [--config pipeline.yaml]
    luigi --module pipeline Sweep --configs sweep.txt --workers 2   (one Evaluate per listed config)
"""
from . import errors
from .sweep import Sweep
from .tasks import BuildVocab, Download, EncodeShards, Evaluate, Sample, Train

__all__ = ["BuildVocab", "Download", "EncodeShards", "Evaluate", "Sample", "Sweep", "Train"]

errors.install()   # one-line errors and non-zero exit codes for `luigi --module pipeline`
