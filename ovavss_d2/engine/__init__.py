"""Training-loop pieces of train_net.py's Trainer beyond Detectron2's: the DDP plan of a config
(``ddp.py``) and the mixed-precision runner (``amp.py``)."""
