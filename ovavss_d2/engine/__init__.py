"""Training-loop pieces of ovavss_d2 beyond Detectron2's: the mixed-precision runner."""
