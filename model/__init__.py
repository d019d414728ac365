"""The pure-NumPy CIFG-LSTM engine: model, training, evaluation, sampling, checkpoints."""
from .checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from .evaluate import evaluate_stream
from .network import CIFGLSTM
from .sampling import STRATEGIES, generate
from .training import DivergenceError, Trainer, TrainSettings

__all__ = ["CIFGLSTM", "CheckpointError", "DivergenceError", "STRATEGIES", "Trainer",
           "TrainSettings", "evaluate_stream", "generate", "load_checkpoint", "load_model",
           "save_checkpoint"]
