#!/usr/bin/env python
"""Train and evaluate ovavss_d2 models (OV-AVSS, the TPAVI baseline) with Detectron2.

    python train_net.py --config-file configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml
    python train_net.py --config-file CONFIG --eval-only MODEL.WEIGHTS output/model_final.pth
    python train_net.py --config-file CONFIG --num-gpus 8          # one machine, 8 GPUs
    python train_net.py --config-file CONFIG MODEL.DEVICE cpu      # no GPU

Trailing ``KEY VALUE`` pairs override the config. See docs/GETTING_STARTED.md. Arguments and
files are checked before torch and Detectron2 are imported: a bad input gives one line
``train_net.py: error: <file>: <problem>`` and exit status 2 (docs/RELIABILITY.md).
"""

import copy
import importlib
import json
import logging
import os
import random
import sys
import weakref
from collections import OrderedDict

from ovavss_d2.utils import preflight

if __name__ == "__main__":  # the inputs are checked before torch and Detectron2 are imported
    ARGS = preflight.parse_training_args(prog="train_net.py", description=__doc__.split("\n")[0])

import numpy as np
import torch
from detectron2.data import build_detection_test_loader, get_detection_dataset_dicts
from detectron2.engine import DefaultTrainer, default_setup, hooks, launch
from detectron2.evaluation import verify_results
from detectron2.projects.deeplab import build_lr_scheduler
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from torch.nn.parallel import DistributedDataParallel

from ovavss_d2 import get_cfg
from ovavss_d2.checkpoint import (
    CheckpointError,
    OVAVSSCheckpointer,
    find_resumable_checkpoint,
    load_for_inference,
    load_training_start,
)
from ovavss_d2.data import build_dataset_mapper
from ovavss_d2.data.audio import audio_length_summary
from ovavss_d2.data.dataset_checks import (
    DatasetError,
    ReportClipErrors,
    check_config_datasets,
    quiet_training_traceback,
)
from ovavss_d2.data.datasets import register_from_config
from ovavss_d2.data.samplers import build_resumable_train_loader
from ovavss_d2.data.vocabulary import dataset_vocabulary
from ovavss_d2.engine.amp import amp_settings, build_runner, quiet_detectron2_amp_trainer
from ovavss_d2.engine.ddp import ddp_options, ddp_plan, freeze_modules
from ovavss_d2.evaluation import build_evaluator
from ovavss_d2.solver import build_optimizer
from ovavss_d2.utils.safe_config import local_copy
from ovavss_d2.utils.video_io import MediaError

PROG = "train_net.py"


def get_parser():
    """Detectron2's training options (``--config-file``, ``--resume``, ``--num-gpus``, ...)."""
    return preflight.training_parser(__doc__.split("\n")[0])


# Checks of the config chain, overrides, device, output folder and weights (no torch needed).
check_args = preflight.check_training_args


def parse_and_check(argv=None):
    """Parsed arguments; a bad input exits with one line and status 2."""
    return preflight.parse_training_args(argv, PROG, __doc__.split("\n")[0])


# Input errors found after the heavy imports: reported as one line, like the preflight ones (our
# FileNotFoundErrors name the file: a dataset root, a CLIP checkpoint, a class list; a
# DatasetError names the dataset or clip and the file).
INPUT_ERRORS = (preflight.InputError, CheckpointError, MediaError, FileNotFoundError, DatasetError)


def _rng_states() -> dict:
    """Python, NumPy and torch (CPU, CUDA) RNG states, in types torch.load(weights_only) reads."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states = {
        "python": random.getstate(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _drop_metrics_from(path: str, start_iter: int) -> int:
    """Remove the ``metrics.json`` records of iterations >= ``start_iter``; returns how many."""
    if not os.path.isfile(path):
        return 0
    kept, dropped = [], 0
    with open(path) as f:
        for line in f:
            try:
                iteration = json.loads(line).get("iteration", -1)
            except ValueError:
                iteration = start_iter  # a line cut by the kill
            if iteration >= start_iter:
                dropped += 1
            else:
                kept.append(line)
    if dropped:
        with open(path, "r+") as f:  # same file: the JSON writer's append handle stays valid
            f.writelines(kept)
            f.truncate()
    return dropped


class Trainer(DefaultTrainer):
    """DefaultTrainer with the clip mapper, our evaluators, AdamW, per-dataset vocabularies, safe
    and strict checkpoint loading and an exactly resumable data stream."""

    def __init__(self, cfg):
        plan = ddp_plan(cfg)  # build_model freezes its heads; DDP gets its find_unused_parameters
        amp = amp_settings(cfg)  # SOLVER.AMP.*, checked before the model is built
        logging.getLogger("ovavss_d2").info(plan.describe())
        with ddp_options(find_unused_parameters=plan.find_unused_parameters):
            with quiet_detectron2_amp_trainer():
                super().__init__(cfg)  # auto_scale_workers: SOLVER.REFERENCE_WORLD_SIZE -> this run
        # Our runner, not Detectron2 0.6's AMPTrainer (float16, CUDA only): ovavss_d2/engine/amp.py
        self._trainer = build_runner(self._trainer, amp)
        # Safe .pkl / weights_only .pth reading and the unloaded-share limit for MODEL.WEIGHTS and
        # --resume; the periodic checkpointer hook gets the same object.
        self.checkpointer = OVAVSSCheckpointer.from_config(
            cfg, self.model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self)
        )
        for hook in self._hooks:
            if isinstance(hook, hooks.PeriodicCheckpointer):
                hook.checkpointer = self.checkpointer
        self._rng_to_restore = None

    @property
    def train_sampler(self):
        """The resumable sampler of the train loader (None for loaders built otherwise)."""
        return getattr(self._trainer.data_loader, "resumable_sampler", None)

    def state_dict(self):
        # Detectron2 0.6's DefaultTrainer checkpoints only the iteration and the hooks (scheduler):
        # add the optimizer state (AdamW moments), the data stream's seed and the RNG states, so
        # that --resume continues the same run.
        ret = super().state_dict()
        ret["_trainer"] = self._trainer.state_dict()
        if self.train_sampler is not None:
            ret["data"] = {"seed": self.train_sampler.seed}
        ret["rng"] = _rng_states()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        if "_trainer" in state_dict:  # absent from checkpoints of other trainers
            self._trainer.load_state_dict(state_dict["_trainer"])
        if "data" in state_dict and self.train_sampler is not None:
            self.train_sampler.seed = int(state_dict["data"]["seed"])  # the dataset reads it too
        self._rng_to_restore = state_dict.get("rng")

    def resume_or_load(self, resume=True):
        """Load weights or resume; a resumed run continues the data stream and RNG states.

        A run that does not resume starts from MODEL.WEIGHTS, else from the pretrained parts
        (MODEL.BACKBONE.WEIGHTS; :func:`load_training_start`). Resuming loads the checkpoint of
        :func:`find_resumable_checkpoint` (one with a training state); with ``last_checkpoint``
        present and no such file it raises CheckpointError rather than start over.
        """
        if not (resume and self.checkpointer.has_checkpoint()):
            load_training_start(self.cfg, self.checkpointer)
            return
        found = find_resumable_checkpoint(self.cfg.OUTPUT_DIR)
        if found is None:
            raise CheckpointError(
                f"{self.checkpointer.get_checkpoint_file()}: holds no training state (iteration, "
                f"optimizer), nor does any other checkpoint in {self.cfg.OUTPUT_DIR}: nothing to "
                "resume (train without --resume, in another OUTPUT_DIR to keep this one)"
            )
        self.checkpointer.load(found[0])  # the model and the trainer state
        self.start_iter = self.iter + 1  # the checkpoint holds the iteration that finished
        if self.train_sampler is not None:
            self.train_sampler.set_start_iter(self.start_iter)
        self._trainer._data_loader_iter = iter(
            self._trainer.data_loader
        )  # the old one already prefetched
        if self._rng_to_restore is not None:
            _set_rng_states(self._rng_to_restore)  # after iter(), which draws a worker seed
        if comm.is_main_process():
            dropped = _drop_metrics_from(
                os.path.join(self.cfg.OUTPUT_DIR, "metrics.json"), self.start_iter
            )
            if dropped:
                logging.getLogger("ovavss_d2").info(
                    "metrics.json: dropped %d records of iterations >= %d (written after the "
                    "checkpoint resumed from)",
                    dropped,
                    self.start_iter,
                )

    def train(self):
        result = super().train()
        summary = audio_length_summary()
        if summary:
            logging.getLogger("ovavss_d2").info("training data: %s", summary)
        return result

    @classmethod
    def build_model(cls, cfg):
        """The model, with the heads that no loss of ``cfg`` trains frozen (:func:`ddp_plan`)."""
        model = super().build_model(cfg)
        freeze_modules(model, ddp_plan(cfg).frozen)
        return model

    @classmethod
    def build_train_loader(cls, cfg):
        dicts = get_detection_dataset_dicts(
            cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
        )
        mapper = ReportClipErrors(build_dataset_mapper(cfg, is_train=True))  # one-line errors
        loader, sampler = build_resumable_train_loader(cfg, dicts, mapper)
        loader.resumable_sampler = sampler
        return loader

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        mapper = ReportClipErrors(build_dataset_mapper(cfg, is_train=False))
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
        rng = _rng_states()  # evaluation must not shift the training run's random streams
        results = OrderedDict()
        for idx, name in enumerate(cfg.DATASETS.TEST):
            if hasattr(net, "set_vocabulary"):
                net.set_vocabulary(dataset_vocabulary(name, cfg.MODEL.OVAVSS.TEST.VOCABULARY))
            one = cfg.clone()
            one.defrost()
            one.DATASETS.TEST = (name,)
            one.freeze()
            chosen = [evaluators[idx]] if evaluators is not None else None
            results[name] = super().test(one, model, chosen)
        _set_rng_states(rng)
        summary = audio_length_summary()
        if summary:
            logging.getLogger("ovavss_d2").info("evaluation data: %s", summary)
        if len(results) == 1:
            results = list(results.values())[0]
        return results


def load_config(args):
    """Config from defaults + ovavss_d2 and TPAVI keys + file + command line (no file is written).

    Raises:
        preflight.InputError: an unknown key, a value of the wrong type or a bad override.
    """
    cfg = get_cfg()
    preflight.merge_config(
        cfg, args.config_file, args.opts, "command-line overrides", preflight.remote_flag(args)
    )
    if cfg.OUTPUT_DIR.strip():  # '~' expanded, as checked (preflight.output_path)
        cfg.OUTPUT_DIR = str(preflight.output_path(cfg.OUTPUT_DIR, "OUTPUT_DIR"))
    cfg.freeze()
    return cfg


def setup(args):
    """:func:`load_config`, then logging and the output folder (config.yaml, log.txt).

    Raises:
        preflight.InputError: an unknown key, a value of the wrong type or a bad override.
    """
    cfg = load_config(args)
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        raise preflight.InputError(f"MODEL.DEVICE {cfg.MODEL.DEVICE}: no GPU: add MODEL.DEVICE cpu")
    # default_setup logs the config file's text: give it the cached copy of a remote one.
    local_args = copy.copy(args)
    local_args.config_file = local_copy(args.config_file)
    try:
        default_setup(cfg, local_args)  # creates OUTPUT_DIR, writes config.yaml
    except OSError as e:  # e.g. below /proc, or a full disk
        raise preflight.InputError(
            f"{cfg.OUTPUT_DIR}: OUTPUT_DIR cannot be written: {e.strerror or e}"
        ) from None
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="ovavss_d2")
    register_from_config(cfg)  # DATASETS.CLASS_LIST / OV_SPLIT / SKIP_BAD_CLIPS take effect
    return cfg


def finished_run(cfg):
    """The message for a run that ``--resume`` would not continue (None to train): its resumable
    checkpoint holds the final iteration of ``SOLVER.MAX_ITER`` (scaled to this run's processes, as
    the trainer scales it) or a later one."""
    max_iter = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size()).SOLVER.MAX_ITER
    found = find_resumable_checkpoint(cfg.OUTPUT_DIR)
    if found is None or found[1] + 1 < max_iter:
        return None
    path, iteration = found
    scaled = f" ({cfg.SOLVER.MAX_ITER} scaled to {comm.get_world_size()} processes)"
    return (
        f"{PROG}: {cfg.OUTPUT_DIR}: the run is finished: {os.path.basename(path)} holds "
        f"{iteration + 1} iterations and SOLVER.MAX_ITER is {max_iter}"
        f"{scaled if max_iter != cfg.SOLVER.MAX_ITER else ''}; nothing to do, nothing changed "
        "(a larger SOLVER.MAX_ITER continues it)"
    )


def main(args):
    if args.resume and not args.eval_only:
        # Before setup(), which writes config.yaml and log.txt: a finished run is left untouched.
        message = finished_run(load_config(args))
        if message is not None:
            if comm.is_main_process():
                print(message, flush=True)
            return None
    cfg = setup(args)
    # Every dataset the run reads, before the model is built: a defect ends in one line.
    check_config_datasets(cfg, training=not args.eval_only)
    quiet_training_traceback()  # a clip's unreadable file: the one line only
    if args.eval_only:
        model = Trainer.build_model(cfg)
        # refuses a model left untrained (MODEL.ALLOW_UNTRAINED True runs it)
        load_for_inference(cfg, model, cfg.OUTPUT_DIR, resume=args.resume, source=args.config_file)
        res = Trainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, res)
        return res

    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    result = trainer.train()
    if comm.is_main_process():
        # Weights only (no optimizer / scheduler state; frozen pretrained modules by source): what
        # the demo and predictor load. Not named in last_checkpoint, which keeps naming
        # model_final.pth (resumable, with the optimizer state).
        path = trainer.checkpointer.save_weights("model_weights")
        logging.getLogger("ovavss_d2").info("Saved %s", path)
    return result


def launch_cpu_capable() -> bool:
    """Whether the installed detectron2 ``launch`` starts processes without GPUs (gloo)."""
    import inspect

    launch_module = importlib.import_module("detectron2.engine.launch")  # not launch() itself
    return "GLOO" in inspect.getsource(launch_module).upper()


def cli(args) -> None:
    """``launch(main, ...)``; input errors found after the imports end in one line too."""
    if args.num_gpus > 1 and not torch.cuda.is_available() and not launch_cpu_capable():
        sys.exit(
            f"{PROG}: error: --num-gpus {args.num_gpus}: this detectron2 build starts processes "
            "with NCCL only; rebuild it with scripts/setup.sh (revision 3 adds gloo for CPUs)"
        )
    try:
        launch(
            main,
            args.num_gpus,
            num_machines=args.num_machines,
            machine_rank=args.machine_rank,
            dist_url=args.dist_url,
            args=(args,),
        )
    except INPUT_ERRORS as e:
        sys.exit(f"{PROG}: error: {e}")


if __name__ == "__main__":
    cli(ARGS)
