"""Backbones registered in Detectron2's BACKBONE_REGISTRY (R50 and others come from Detectron2)."""

from .efficientnet import D2EfficientNetLite, packaged_weights_path

__all__ = ["D2EfficientNetLite", "packaged_weights_path"]
