"""Detectron2 evaluators of ovavss_d2 and ``build_evaluator``, which picks one per dataset."""

from typing import Optional

from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator

from .avs_evaluation import AVSBinaryEvaluator
from .avss_evaluation import AVSSEvaluator

__all__ = ["AVSSEvaluator", "AVSBinaryEvaluator", "build_evaluator", "EVALUATOR_TYPES"]

# evaluator_type in a dataset's metadata -> evaluator class.
EVALUATOR_TYPES = {"avss": AVSSEvaluator, "avs_binary": AVSBinaryEvaluator}


def build_evaluator(
    cfg: CfgNode, dataset_name: str, output_folder: Optional[str] = None
) -> DatasetEvaluator:
    """Build the evaluator named by ``MetadataCatalog.get(dataset_name).evaluator_type``.

    Args:
        cfg: a config with ovavss_d2's keys (``TEST.AVSS.*``, ``TEST.AVS.*``).
        dataset_name: a registered test dataset.
        output_folder: where the evaluator writes its JSON report; None writes nothing.

    Returns:
        an ``AVSSEvaluator`` ("avss") or an ``AVSBinaryEvaluator`` ("avs_binary").
    """
    evaluator_type = getattr(MetadataCatalog.get(dataset_name), "evaluator_type", None)
    if evaluator_type not in EVALUATOR_TYPES:
        raise NotImplementedError(
            f"no evaluator for dataset '{dataset_name}' with evaluator_type {evaluator_type!r}; "
            f"ovavss_d2 evaluates {sorted(EVALUATOR_TYPES)}"
        )
    return EVALUATOR_TYPES[evaluator_type].from_config(cfg, dataset_name, output_folder)
