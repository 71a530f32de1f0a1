"""Mixed-precision training (``SOLVER.AMP.*``) through ``torch.amp``, on CUDA and on the CPU.

Detectron2 0.6's ``AMPTrainer`` autocasts to float16 only, needs CUDA and uses the deprecated
``torch.cuda.amp``. :class:`AMPRunner` takes its place in train_net.py's Trainer
(:func:`build_runner`):

- ``SOLVER.AMP.DTYPE "auto"``: bfloat16 where the device has it natively (the CPU; a CUDA GPU with
  ``torch.cuda.is_bf16_supported(including_emulation=False)``, Ampere and later), else float16;
  ``"bfloat16"`` / ``"float16"`` force one.
- float16 gets a ``torch.amp.GradScaler`` (small gradients underflow float16 unless scaled); the
  gradients are unscaled before ``optimizer.step``, so the gradient clipping that the optimizer
  does in ``step`` (``SOLVER.CLIP_GRADIENTS``, ovavss_d2/solver.py) sees their true norm. Steps
  with inf / NaN gradients are skipped by the scaler, which then lowers its scale. bfloat16 has
  float32's range and needs no scaler.
- The scaler's state is part of the runner's ``state_dict`` (checkpointed: exact ``--resume``).

In autocast: the model's forward (backbone, audio encoder, pixel and transformer decoders). Not in
autocast: the OV-AVSS losses (classifier logits, matching costs, cross-entropy, BCE, dice: float32,
``OVAVSS._losses``), the backward pass (each op in its forward dtype), the optimizer step, and
evaluation.
"""

import logging
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, Optional

import torch
from detectron2.config import CfgNode
from detectron2.engine import SimpleTrainer
from torch import nn

from ..utils.preflight import InputError

__all__ = [
    "AMP_DTYPES",
    "AMPRunner",
    "AMPSettings",
    "amp_settings",
    "build_runner",
    "quiet_detectron2_amp_trainer",
    "resolve_amp_dtype",
]

logger = logging.getLogger("ovavss_d2")

# SOLVER.AMP.DTYPE values -> autocast dtype (None: chosen per device by resolve_amp_dtype).
AMP_DTYPES = {"auto": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _native_bf16(device_type: str) -> bool:
    """Whether ``device_type`` computes bfloat16 natively (not emulated)."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return device_type == "cpu"


def resolve_amp_dtype(name: str, device_type: str) -> torch.dtype:
    """The autocast dtype of ``SOLVER.AMP.DTYPE`` ``name`` on ``device_type`` ("cpu", "cuda").

    Raises:
        InputError: ``name`` is not one of :data:`AMP_DTYPES`.
    """
    if name not in AMP_DTYPES:
        raise InputError(
            f"SOLVER.AMP.DTYPE {name!r}: not one of {', '.join(AMP_DTYPES)} (the autocast dtype "
            "of SOLVER.AMP.ENABLED training)"
        )
    if AMP_DTYPES[name] is not None:
        return AMP_DTYPES[name]
    return torch.bfloat16 if _native_bf16(device_type) else torch.float16


@dataclass(frozen=True)
class AMPSettings:
    """Mixed precision of a run: off, or autocast to ``dtype`` on ``device_type``."""

    enabled: bool
    device_type: str
    dtype: Optional[torch.dtype]  # None when disabled
    requested: str = "auto"  # SOLVER.AMP.DTYPE

    @property
    def uses_scaler(self) -> bool:
        """float16 needs a gradient scaler; bfloat16 (float32's exponent range) does not."""
        return self.enabled and self.dtype == torch.float16

    def describe(self) -> str:
        """One line for the log."""
        if not self.enabled:
            return "AMP off (SOLVER.AMP.ENABLED False): float32 training"
        scaler = "with a GradScaler" if self.uses_scaler else "no gradient scaler"
        name = str(self.dtype).replace("torch.", "")
        return (
            f"AMP on: {name} autocast on {self.device_type} (SOLVER.AMP.DTYPE {self.requested}), "
            f"{scaler}"
        )


def amp_settings(cfg: CfgNode) -> AMPSettings:
    """``SOLVER.AMP.ENABLED`` and ``SOLVER.AMP.DTYPE`` on ``MODEL.DEVICE``, validated.

    Raises:
        InputError: an unknown ``SOLVER.AMP.DTYPE`` (also when AMP is off, so that a typo does not
            wait until AMP is switched on).
    """
    device_type = torch.device(cfg.MODEL.DEVICE).type
    dtype = resolve_amp_dtype(cfg.SOLVER.AMP.DTYPE, device_type)
    if not cfg.SOLVER.AMP.ENABLED:
        return AMPSettings(False, device_type, None, cfg.SOLVER.AMP.DTYPE)
    if dtype == torch.bfloat16 and not _native_bf16(device_type):
        logger.warning(
            "SOLVER.AMP.DTYPE bfloat16: %s has no native bfloat16, so it is emulated (slow); "
            "SOLVER.AMP.DTYPE auto picks float16 with a gradient scaler here",
            device_type,
        )
    return AMPSettings(True, device_type, dtype, cfg.SOLVER.AMP.DTYPE)


class AMPRunner(SimpleTrainer):
    """Detectron2's ``SimpleTrainer`` step with the forward in ``torch.autocast`` and, for
    float16, a ``torch.amp.GradScaler`` (see the module docstring)."""

    def __init__(
        self,
        model: nn.Module,
        data_loader,
        optimizer: torch.optim.Optimizer,
        *,
        device_type: str,
        dtype: torch.dtype,
        grad_scaler: Optional[torch.amp.GradScaler] = None,
    ):
        """
        Args:
            model, data_loader, optimizer: as for ``SimpleTrainer``; the model returns a dict of
                scalar losses (or one scalar loss).
            device_type: autocast device type, "cuda" or "cpu".
            dtype: ``torch.bfloat16`` or ``torch.float16``.
            grad_scaler: the scaler for float16; default a new ``torch.amp.GradScaler`` for
                float16 and none for bfloat16.
        """
        if dtype not in (torch.bfloat16, torch.float16):
            raise ValueError(f"AMPRunner: dtype must be bfloat16 or float16, got {dtype}")
        super().__init__(model, data_loader, optimizer)
        self.device_type = device_type
        self.dtype = dtype
        if grad_scaler is None and dtype == torch.float16:
            grad_scaler = torch.amp.GradScaler(device_type)
        self.grad_scaler = grad_scaler

    @classmethod
    def from_trainer(cls, trainer: SimpleTrainer, settings: AMPSettings) -> "AMPRunner":
        """A runner over ``trainer``'s model, data loader and optimizer."""
        return cls(
            trainer.model,
            trainer.data_loader,
            trainer.optimizer,
            device_type=settings.device_type,
            dtype=settings.dtype,
        )

    def run_step(self) -> None:
        """One iteration: forward in autocast, (scaled) backward, metrics, (unscaled) step."""
        assert self.model.training, "[AMPRunner] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            loss_dict = self.model(data)
        if isinstance(loss_dict, torch.Tensor):
            loss_dict = {"total_loss": loss_dict}
        losses = sum(v.float() for v in loss_dict.values())

        self.optimizer.zero_grad()
        if self.grad_scaler is None:
            losses.backward()
        else:
            self.grad_scaler.scale(losses).backward()

        self._write_metrics(loss_dict, data_time)

        if self.grad_scaler is None:
            self.optimizer.step()
        else:
            # The clipping inside optimizer.step (full-model or Detectron2's) must see the true
            # gradients: unscale first (GradScaler.step would too; explicit, not left to it). The
            # scaler's step then skips the update if any of them is inf / NaN.
            self.grad_scaler.unscale_(self.optimizer)
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()

    def state_dict(self) -> Dict:
        ret = super().state_dict()
        if self.grad_scaler is not None:
            ret["grad_scaler"] = self.grad_scaler.state_dict()
        return ret

    def load_state_dict(self, state_dict: Dict) -> None:
        super().load_state_dict(state_dict)
        if self.grad_scaler is None:
            return
        if "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
        else:  # a checkpoint of float32 or bfloat16 training
            logger.info("The checkpoint has no gradient-scaler state: the scaler starts afresh")


def build_runner(trainer: SimpleTrainer, settings: AMPSettings) -> SimpleTrainer:
    """The training-step runner of ``settings``: ``trainer`` itself without AMP, else an
    :class:`AMPRunner` over its model, data loader and optimizer. Logs the choice."""
    logger.info(settings.describe())
    if not settings.enabled:
        return trainer
    return AMPRunner.from_trainer(trainer, settings)


@contextmanager
def quiet_detectron2_amp_trainer() -> Iterator[None]:
    """Silence the warnings of the ``torch.cuda.amp.GradScaler`` that Detectron2 0.6's
    ``DefaultTrainer`` builds for its own AMPTrainer when ``SOLVER.AMP.ENABLED`` (deprecated API;
    "CUDA is not available" on the CPU): :func:`build_runner` replaces that trainer."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.cuda\.amp\.GradScaler")
        yield
