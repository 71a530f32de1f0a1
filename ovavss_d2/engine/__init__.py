"""Training-loop pieces of train_net.py's Trainer (DistributedDataParallel, ...)."""
