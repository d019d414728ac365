"""Luigi pipeline: Download -> BuildVocab -> EncodeShards -> Train -> Sample -> Evaluate.

    luigi --module pipeline Evaluate --local-scheduler [--config pipeline.yaml]
"""
from .errors import install as _install_error_handling
from .tasks import BuildVocab, Download, EncodeShards, Evaluate, Sample, Train

__all__ = ["BuildVocab", "Download", "EncodeShards", "Evaluate", "Sample", "Train"]

_install_error_handling()
