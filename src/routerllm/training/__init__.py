"""Training code: losses and the training loop. The only place optimisers live.

Inference code (routers, encoders, the server) never imports this package;
a router's ``fit`` imports it lazily.
"""

from routerllm.training.losses import LOSS_NAMES, make_loss
from routerllm.training.trainer import TrainingArguments, TrainingHistory, train

__all__ = ["LOSS_NAMES", "TrainingArguments", "TrainingHistory", "make_loss", "train"]
