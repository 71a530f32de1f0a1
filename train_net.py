#!/usr/bin/env python
"""Train and evaluate ovavss_d2 models (OV-AVSS, the TPAVI baseline) with Detectron2.

    python train_net.py --config-file configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml
    python train_net.py --config-file CONFIG --eval-only MODEL.WEIGHTS output/model_final.pth
    python train_net.py --config-file CONFIG --num-gpus 8          # one machine, 8 GPUs
    python train_net.py --config-file CONFIG MODEL.DEVICE cpu      # no GPU

Trailing ``KEY VALUE`` pairs override the config. See docs/GETTING_STARTED.md.
"""

import logging
import os
from collections import OrderedDict

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.engine import DefaultTrainer, default_argument_parser, default_setup, launch
from detectron2.evaluation import verify_results
from detectron2.projects.deeplab import build_lr_scheduler
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from torch.nn.parallel import DistributedDataParallel

from ovavss_d2 import add_ovavss_config
from ovavss_d2.data import build_dataset_mapper
from ovavss_d2.evaluation import build_evaluator
from ovavss_d2.modeling.meta_arch import dataset_vocabulary
from ovavss_d2.solver import build_optimizer


class Trainer(DefaultTrainer):
    """DefaultTrainer with the clip mapper, our evaluators, AdamW and per-dataset vocabularies."""

    def state_dict(self):
        # Detectron2 0.6's DefaultTrainer checkpoints only the iteration and the hooks (scheduler):
        # add the optimizer state (AdamW moments) so that --resume continues the same run.
        ret = super().state_dict()
        ret["_trainer"] = self._trainer.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        if "_trainer" in state_dict:  # absent from checkpoints of other trainers
            self._trainer.load_state_dict(state_dict["_trainer"])

    @classmethod
    def build_train_loader(cls, cfg):
        return build_detection_train_loader(cfg, mapper=build_dataset_mapper(cfg, is_train=True))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        mapper = build_dataset_mapper(cfg, is_train=False)
        return build_detection_test_loader(cfg, dataset_name, mapper=mapper)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        # Detectron2's schedulers plus WarmupPolyLR (SOLVER.POLY_LR_POWER / _CONSTANT_ENDING).
        return build_lr_scheduler(cfg, optimizer)

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_optimizer(cfg, model)  # AdamW, backbone lr multiplier, full-model clipping

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """Evaluate every DATASETS.TEST dataset with its own vocabulary (text embeddings cached)."""
        net = model.module if isinstance(model, DistributedDataParallel) else model
        results = OrderedDict()
        for idx, name in enumerate(cfg.DATASETS.TEST):
            if hasattr(net, "set_vocabulary"):
                net.set_vocabulary(dataset_vocabulary(name, cfg.MODEL.OPEN_VOCAB.VOCABULARY))
            one = cfg.clone()
            one.defrost()
            one.DATASETS.TEST = (name,)
            one.freeze()
            chosen = [evaluators[idx]] if evaluators is not None else None
            results[name] = super().test(one, model, chosen)
        if len(results) == 1:
            results = list(results.values())[0]
        return results


def setup(args):
    """Config from defaults + ovavss_d2 keys + file + command line; logging and output dir."""
    cfg = get_cfg()
    add_ovavss_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="ovavss_d2")
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        res = Trainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, res)
        return res

    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    result = trainer.train()
    if comm.is_main_process():
        # Weights only (no optimizer / scheduler state): what the demo and predictor load.
        net = (
            trainer.model.module
            if isinstance(trainer.model, DistributedDataParallel)
            else trainer.model
        )
        DetectionCheckpointer(net, save_dir=cfg.OUTPUT_DIR).save("model_weights")
        logging.getLogger("ovavss_d2").info(
            "Saved %s", os.path.join(cfg.OUTPUT_DIR, "model_weights.pth")
        )
    return result


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
