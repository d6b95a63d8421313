"""Training: the contrastive loss, the schedule, the loop, checkpoints, data parallelism and heads-only training."""
