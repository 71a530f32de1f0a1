"""Checkpoint loading that cannot run code and refuses weights that leave the model unloaded.

``OVAVSSCheckpointer`` is Detectron2's ``DetectionCheckpointer`` with three changes:

- ``.pkl`` files (Detectron2 / Mask2Former model-zoo format) are read by :class:`SafeUnpickler`,
  which admits only dicts, lists, tuples, strings, numbers and NumPy arrays;
- ``.pth`` files are read with ``torch.load(..., weights_only=True)`` (explicit, whatever the
  installed torch's default), after the CRC of every member of a zip-format file is checked
  (``torch.load`` does not: a flipped byte would load as a wrong weight);
- a floating tensor with NaN or infinite values, or an all-zero tensor where the model's own is
  not all zero (a blanked file), stops loading with an error naming the tensor;
- after loading, the share of parameter elements left unloaded (missing from the file or of
  another shape) is compared with ``MODEL.CHECKPOINT.MAX_UNLOADED_SHARE``; beyond it, loading stops
  with one :class:`CheckpointError` naming the missing and unexpected key groups.

A ``MODEL.WEIGHTS`` URL is downloaded into the project's cache, under a key of the whole URL
(:mod:`ovavss_d2.utils.downloads`); ``ovavss_d2://`` URLs (the model zoo,
:mod:`ovavss_d2.model_zoo`) resolve to files inside the package. Unreadable files (missing, empty,
truncated, corrupt, refused) raise :class:`CheckpointError`, a ``ValueError`` whose message starts
with the file name.

For inference, :func:`load_for_inference` loads ``MODEL.WEIGHTS`` and refuses, with
:class:`UntrainedModelError`, a model whose trainable parameters all keep their initial values
(nothing loaded into them), unless ``MODEL.ALLOW_UNTRAINED`` is True.

Saving writes a temporary file and renames it (a kill leaves the old file whole), and
:meth:`OVAVSSCheckpointer.save_weights` writes a weights-only export without naming it in
``last_checkpoint``, which always names a checkpoint with a training state
(:func:`find_resumable_checkpoint`): the optimizer's state (AdamW moments) is only in those.

Frozen modules whose weights come from a file (a module attribute ``weights_source``: a frozen
VGGish or YAMNet audio encoder, a fully frozen EfficientNet) are left out of saved files unless
``MODEL.CHECKPOINT.STORE_FROZEN_WEIGHTS``: the file's ``frozen_sources`` entry maps each one's
name to its source file and the sha256 of its weights (:func:`weights_digest`). Loading checks the
model's module against that digest and, when the model was built from other weights, restores it
from the recorded file (the module's ``read_weights``); a missing file or other content stops
loading. Files without the entry (of earlier versions) that lack such a module keep the model's.

Two ways to start, kept apart:

- *load a trained model*: ``MODEL.WEIGHTS`` (training, ``--eval-only``, the demo), strict up to
  ``MODEL.CHECKPOINT.MAX_UNLOADED_SHARE``, with the untrained-model checks of inference;
- *initialise from pretrained parts*: ``MODEL.BACKBONE.WEIGHTS``, read only when a training run
  starts without ``MODEL.WEIGHTS`` (:func:`load_training_start`). A key of its own, rather than a
  backbone-only ``MODEL.WEIGHTS`` with a relaxed share (Detectron2's habit), because one file
  cannot then be both: the paper configs name ImageNet weights for training and stay strict when
  evaluated with a trained ``MODEL.WEIGHTS``; it is loaded into the backbone alone, so the suffix
  matching of ``.pkl`` files cannot fill a same-named layer elsewhere, and a partial load is
  normal there. It follows ``MODEL.AUDIO_ENCODER.WEIGHTS``: each pretrained part names its file.
  One log line lists, grouped by module, what starts from random initialisation, and a run that
  starts every trained module from it says so in one WARNING.
"""

import glob
import hashlib
import logging
import os
import pickle
import zipfile
from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from torch import nn

from .model_zoo import path_handler  # noqa: F401  (registers ovavss_d2:// with PathManager)
from .utils import downloads
from .utils.preflight import weights_file_problem

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointError",
    "UntrainedModelError",
    "SafeUnpickler",
    "OVAVSSCheckpointer",
    "load_for_inference",
    "zip_crc_problem",
    "safe_pickle_load",
    "training_iteration",
    "find_resumable_checkpoint",
    "weights_digest",
    "frozen_pretrained_modules",
    "load_pretrained_backbone",
    "all_random_problem",
    "load_training_start",
]

# (module, name) pairs a model-zoo pickle needs: NumPy arrays, dtypes and scalars, ordered dicts,
# and the bytes helper that protocol-2 pickles of Python 3 use.
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),  # protocol 5
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
    ("__builtin__", "bytes"),  # b"" in protocol 2 (empty arrays, NumPy string scalars)
    ("builtins", "bytes"),
}


class CheckpointError(ValueError):
    """A weights file that cannot be used; the message starts with the file name."""


class UntrainedModelError(CheckpointError):
    """Inference with a model whose trainable parameters all keep their initial values.

    Attributes:
        problem: what is wrong, without the config file or the way to override it.
    """

    def __init__(self, problem: str, source: str = "", override: str = ""):
        self.problem = problem
        override = override or "set MODEL.ALLOW_UNTRAINED True"
        prefix = f"{source}: " if source else ""
        super().__init__(
            f"{prefix}{problem}: it would segment nothing. Give MODEL.WEIGHTS a trained "
            f"checkpoint, or {override} to run it untrained"
        )


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that builds only plain containers, strings, numbers and NumPy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "numpy.dtypes" and name.endswith("DType"):
            # the dtype classes of NumPy 2 (numpy.dtypes.Float32DType ...), not the module itself
            return super().find_class(module, name)
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refused to load the global '{module}.{name}': a weights file holds only dicts, "
            "lists, strings, numbers and NumPy arrays"
        )


def safe_pickle_load(f) -> Any:
    """``pickle.load(f, encoding="latin1")`` through :class:`SafeUnpickler`."""
    return SafeUnpickler(f, encoding="latin1").load()


def _group(key: str, depth: int = 2) -> str:
    return ".".join(key.split(".")[:depth])


def _summarise(keys: Iterable[str], limit: int = 6) -> str:
    groups = Counter(_group(k) for k in keys)
    parts = [f"{g} ({n})" for g, n in groups.most_common(limit)]
    if len(groups) > limit:
        parts.append(f"... {len(groups) - limit} more groups")
    return ", ".join(parts) if parts else "none"


def zip_crc_problem(path: str) -> Optional[str]:
    """For a zip-format file (PyTorch's format since 1.6): the first member whose data does not
    match its CRC, as a message; None for a sound zip or a file of another format."""
    with open(path, "rb") as f:
        if f.read(2) != b"PK":
            return None
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        # a compressed member that does not decompress (torch's are stored, not compressed)
        return f"a damaged zip archive ({type(e).__name__}: {e}); truncated or corrupt copy?"
    if bad is None:
        return None
    return f"member '{bad}' fails its CRC check: the file was damaged (re-download or copy it)"


def _as_float_tensor(value: Any) -> Optional[torch.Tensor]:
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return torch.from_numpy(value)
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value
    return None


def _broken_tensor_problem(weights: Dict[str, Any], model_state: Dict[str, torch.Tensor]) -> str:
    """Why the tensors of a checkpoint's model part cannot be used, or ''.

    A floating tensor with NaN or infinite values; an all-zero tensor (of more than one element)
    whose counterpart in the model (same name and shape) is not all zero: a blanked file. Tensors
    that are zero by design (most biases, zero-initialised layers) are zero in the model too.
    """
    not_finite, zero = [], []
    for name, value in weights.items():
        tensor = _as_float_tensor(value)
        if tensor is None or tensor.numel() == 0:
            continue
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            nan = int(torch.isnan(tensor).sum())
            not_finite.append((name, nan, int((~finite).sum()) - nan, tensor.numel()))
            continue
        own = model_state.get(name)
        if (
            tensor.numel() > 1
            and own is not None
            and own.is_floating_point()
            and tuple(own.shape) == tuple(tensor.shape)
            and not bool(tensor.any())
            and bool(own.any())
        ):
            zero.append(name)
    if not_finite:
        name, nan, inf, numel = not_finite[0]
        more = f" (and {len(not_finite) - 1} more tensors)" if len(not_finite) > 1 else ""
        return (
            f"tensor '{name}' holds {nan} NaN and {inf} infinite values of {numel}{more}: "
            "the weights of a diverged run or a damaged file"
        )
    if zero:
        more = f" (and {len(zero) - 1} more tensors)" if len(zero) > 1 else ""
        return (
            f"tensor '{zero[0]}' is all zeros{more}, where the model's own values are not: "
            "a blanked or broken checkpoint"
        )
    return ""


def untrained_problem(model: torch.nn.Module, loaded_keys: Set[str], weights: str) -> str:
    """Why ``model`` is untrained ('' when it is not).

    Untrained: it has trainable parameters and none of them was loaded (``loaded_keys``: the
    state-dict keys a checkpointer filled), or a top-level module with trainable parameters got
    none of its own (backbone-only weights: the decoders keep their random initialisation).
    Frozen encoders that load their own pretrained weights (``requires_grad`` False) do not count.
    """
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        return ""
    if not loaded_keys.intersection(trainable):
        what = f"MODEL.WEIGHTS '{weights}' loads none of" if weights else "MODEL.WEIGHTS is empty:"
        return (
            f"{what} the model's {len(trainable)} trainable parameter tensors "
            f"({_summarise(trainable, limit=3)}), which keep their random initialisation"
        )
    modules: Dict[str, list] = {}
    for name in trainable:
        modules.setdefault(name.split(".")[0], []).append(name in loaded_keys)
    untouched = [f"{m} ({len(v)})" for m, v in modules.items() if not any(v)]
    if not untouched:
        return ""
    return (
        f"MODEL.WEIGHTS '{weights}' loads none of the trainable parameter tensors of "
        f"{', '.join(untouched)}, which keep their random initialisation"
    )


def training_iteration(path: str) -> Optional[int]:
    """The last finished training iteration saved in a checkpoint of ``train_net.py``'s trainer.

    Returns:
        the iteration (0-based), or None for a file without a training state (a weights-only
        export, model-zoo weights) or one that cannot be read.
    """
    if not path.endswith(".pth") or weights_file_problem(path) is not None:
        return None
    try:
        try:  # mmap: the tensors are not read
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # a file in the legacy (not zip) format
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # unreadable: not a checkpoint to resume from
        return None
    trainer = data.get("trainer") if isinstance(data, dict) else None
    if isinstance(trainer, dict) and isinstance(trainer.get("iteration"), int):
        return int(trainer["iteration"])
    return None


def find_resumable_checkpoint(save_dir: str) -> Optional[Tuple[str, int]]:
    """The checkpoint ``--resume`` continues from, and its iteration.

    The file ``save_dir/last_checkpoint`` names, when it holds a training state; otherwise (a
    folder of a version that tagged its weights-only export) the ``.pth`` file of ``save_dir`` with
    the latest training iteration. None when ``last_checkpoint`` is absent or no file qualifies.
    """
    last = os.path.join(save_dir, "last_checkpoint")
    if not os.path.isfile(last):
        return None
    with open(last) as f:
        named = os.path.join(save_dir, f.read().strip())
    iteration = training_iteration(named)
    if iteration is not None:
        return named, iteration
    found = [(training_iteration(p), p) for p in sorted(glob.glob(os.path.join(save_dir, "*.pth")))]
    found = [(it, os.path.basename(p) == "model_final.pth", p) for it, p in found if it is not None]
    if not found:
        return None
    iteration, _, path = max(found)  # the latest iteration; model_final.pth on a tie
    logger.warning(
        "%s names %s, which holds no training state; resuming from %s (iteration %d)",
        last,
        named,
        path,
        iteration,
    )
    return path, iteration


def weights_digest(module: nn.Module) -> str:
    """sha256 (hex) of ``module``'s state dict: names, dtypes, shapes and bytes, in key order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def frozen_pretrained_modules(model: nn.Module) -> Dict[str, nn.Module]:
    """The modules of ``model`` that checkpoints leave out by default: name -> module.

    A module qualifies when its ``weights_source`` attribute names a file and none of its
    parameters is trained; of nested ones, the outermost.
    """
    found: Dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if not name or not getattr(module, "weights_source", ""):
            continue
        if any(name.startswith(f"{outer}.") for outer in found):
            continue
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            found[name] = module
    return found


def _atomic_torch_save(data: Any, path: str) -> None:
    tmp = path + ".tmp"
    torch.save(data, tmp)
    os.replace(tmp, path)  # a kill leaves the old file or the new one, never half of one


class OVAVSSCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` with safe file reading and a limit on unloaded parameters.

    Args:
        model, save_dir, checkpointables: as ``DetectionCheckpointer``.
        max_unloaded_share: share (0..1) of parameter elements the loaded file may leave unset.
        store_frozen: save the modules of :func:`frozen_pretrained_modules` too, instead of
            recording their source.
    """

    def __init__(
        self,
        model,
        save_dir: str = "",
        *,
        max_unloaded_share: float = 0.0,
        store_frozen: bool = False,
        **kwargs,
    ):
        super().__init__(model, save_dir, **kwargs)
        self.store_frozen = bool(store_frozen)
        # name -> (identity and version of the module's tensors, their weights_digest)
        self._digests: Dict[str, Tuple[tuple, str]] = {}
        if not 0.0 <= max_unloaded_share <= 1.0:
            raise ValueError(
                f"MODEL.CHECKPOINT.MAX_UNLOADED_SHARE must lie in [0, 1], got {max_unloaded_share}"
            )
        self.max_unloaded_share = float(max_unloaded_share)
        self._current_file = ""
        # State-dict keys of the model filled by the files loaded so far.
        self.loaded_keys: Set[str] = set()

    @classmethod
    def from_config(cls, cfg, model, save_dir: str = "", **kwargs) -> "OVAVSSCheckpointer":
        """Checkpointer with ``MODEL.CHECKPOINT.MAX_UNLOADED_SHARE`` and ``STORE_FROZEN_WEIGHTS``
        of ``cfg``."""
        node = cfg.MODEL.CHECKPOINT
        return cls(
            model,
            save_dir,
            max_unloaded_share=node.MAX_UNLOADED_SHARE,
            store_frozen=node.STORE_FROZEN_WEIGHTS,
            **kwargs,
        )

    def _digest(self, name: str, module: nn.Module) -> str:
        """:func:`weights_digest` of ``module``, recomputed only when one of its tensors changed."""
        key = tuple((t.data_ptr(), t._version) for t in module.state_dict().values())
        cached = self._digests.get(name)
        if cached is None or cached[0] != key:
            cached = self._digests[name] = (key, weights_digest(module))
        return cached[1]

    def model_state(self) -> Dict[str, Any]:
        """``{"model": state dict}`` to save, without the frozen pretrained modules and with their
        ``frozen_sources`` (name -> {"source": file, "sha256": weights digest}) unless
        ``store_frozen``."""
        state = self.model.state_dict()
        if self.store_frozen:
            return {"model": state}
        sources = {}
        for name, module in frozen_pretrained_modules(self.model).items():
            for key in [k for k in state if k.startswith(f"{name}.")]:
                del state[key]
            sources[name] = {"source": module.weights_source, "sha256": self._digest(name, module)}
        return {"model": state, "frozen_sources": sources} if sources else {"model": state}

    def load(self, path: str, *args: Any, **kwargs: Any) -> Dict[str, Any]:
        """``Checkpointer.load``; a URL (http, https, ftp, ``detectron2://``) is read from the
        project's download cache, keyed by the whole URL (:mod:`ovavss_d2.utils.downloads`),
        rather than from iopath's cache, keyed by the URL's path."""
        if path and downloads.is_url(path) and not os.path.isfile(path):
            try:
                path = str(downloads.download(path))
            except downloads.DownloadError as e:
                raise CheckpointError(str(e)) from None
        return super().load(path, *args, **kwargs)

    def save(self, name: str, **kwargs: Any) -> None:
        """``Checkpointer.save`` (model, checkpointables, ``kwargs``; tags ``last_checkpoint``),
        written to a temporary file and renamed."""
        if not self.save_dir or not self.save_to_disk:
            return
        data = self.model_state()
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        path = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to %s", path)
        _atomic_torch_save(data, path)
        self.tag_last_checkpoint(basename)

    def save_weights(self, name: str) -> str:
        """Write :meth:`model_state` (no optimizer or trainer state) to ``save_dir/name.pth`` (what
        the demo and predictor load) without naming it in ``last_checkpoint``; returns the path
        ('' when not saving)."""
        if not self.save_dir or not self.save_to_disk:
            return ""
        path = os.path.join(self.save_dir, f"{name}.pth")
        _atomic_torch_save(self.model_state(), path)
        return path

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        path = os.path.join(self.save_dir, "last_checkpoint")
        with open(path + ".tmp", "w") as f:
            f.write(last_filename_basename)
        os.replace(path + ".tmp", path)

    def _load_file(self, filename: str) -> Dict[str, Any]:
        self._current_file = filename
        problem = weights_file_problem(filename)
        if problem is not None:
            raise CheckpointError(f"{filename}: {problem}")
        if not filename.endswith(".pkl"):
            problem = zip_crc_problem(filename)
            if problem is not None:
                raise CheckpointError(f"{filename}: {problem}")
        if filename.endswith(".pkl"):
            try:
                with open(filename, "rb") as f:
                    data = safe_pickle_load(f)
            except pickle.UnpicklingError as e:
                if str(e).startswith("refused"):
                    raise CheckpointError(f"{filename}: {e}") from None
                raise CheckpointError(
                    f"{filename}: not a readable pickle ({e}); truncated or corrupt?"
                ) from None
            except (EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
                raise CheckpointError(
                    f"{filename}: not a readable pickle ({type(e).__name__}: {e}); truncated or "
                    "corrupt?"
                ) from None
            if not isinstance(data, dict):
                raise CheckpointError(f"{filename}: holds a {type(data).__name__}, not a dict")
            if "model" in data and "__author__" in data:  # Detectron2 model-zoo layout
                logger.info("Reading a file from '%s'", data["__author__"])
                return data
            if "blobs" in data:  # Caffe2 detection models
                data = data["blobs"]
            data = {k: v for k, v in data.items() if not k.endswith("_momentum")}
            return {"model": data, "__author__": "Caffe2", "matching_heuristics": True}
        try:
            loaded = torch.load(filename, map_location=torch.device("cpu"), weights_only=True)
        except pickle.UnpicklingError as e:
            first = str(e).strip().splitlines()
            reason = next((line for line in first if "Unsupported" in line), first[0])
            raise CheckpointError(
                f"{filename}: refused by torch.load(weights_only=True): {reason.strip()}"
            ) from None
        except (EOFError, RuntimeError, OSError, zipfile.BadZipFile) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(
                f"{filename}: not a readable PyTorch checkpoint ({reason}); truncated or corrupt?"
            ) from None
        if not isinstance(loaded, dict):
            raise CheckpointError(f"{filename}: holds a {type(loaded).__name__}, not a state dict")
        if "model" not in loaded:
            loaded = {"model": loaded}
        return loaded

    def _restore_frozen(self, checkpoint: Dict[str, Any]) -> None:
        """Check or restore the modules a file left out (its ``frozen_sources``), then add their
        tensors to its weights, as for files of earlier versions that lack a frozen pretrained
        module (the model keeps its own)."""
        weights = checkpoint["model"]
        recorded = checkpoint.get("frozen_sources") or {}
        for name, entry in recorded.items():
            try:
                module = self.model.get_submodule(name)
            except AttributeError:
                raise CheckpointError(
                    f"{self._current_file}: left out the frozen module '{name}' (from "
                    f"{entry.get('source')}), which this model does not have: a checkpoint of "
                    "another config?"
                ) from None
            self._check_or_restore(name, module, entry)
        for name, module in frozen_pretrained_modules(self.model).items():
            if name in recorded or any(k.startswith(f"{name}.") for k in weights):
                continue  # checked above, or stored in the file
            logger.info(
                "%s holds no '%s' tensors: keeping the model's, from %s",
                self._current_file,
                name,
                module.weights_source,
            )
            weights.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
        for name in recorded:
            module = self.model.get_submodule(name)
            weights.update({f"{name}.{k}": v for k, v in module.state_dict().items()})

    def _check_or_restore(self, name: str, module: nn.Module, entry: Dict[str, str]) -> None:
        """Make ``module`` hold the weights ``entry`` records (source file, sha256), or raise."""
        source, want = str(entry.get("source", "")), str(entry.get("sha256", ""))
        if self._digest(name, module) == want:
            logger.info("%s: '%s' from %s (sha256 matches)", self._current_file, name, source)
            return
        own = getattr(module, "weights_source", "") or "random initialisation"
        where = (
            f"{self._current_file}: '{name}' is not stored in it: its weights came from {source} "
            f"(sha256 {want[:16]}), and this model's (from {own}) differ"
        )
        reader = getattr(module, "read_weights", None)
        if reader is None or not os.path.isfile(source):
            why = "which is missing here" if not os.path.isfile(source) else "not readable back"
            raise CheckpointError(
                f"{where}; {source} {why}: build the model from that file (e.g. "
                "MODEL.AUDIO_ENCODER.WEIGHTS), or load a checkpoint saved with "
                "MODEL.CHECKPOINT.STORE_FROZEN_WEIGHTS True"
            )
        try:
            module.load_state_dict(reader(source))
        except (OSError, RuntimeError, ValueError, KeyError, pickle.UnpicklingError) as e:
            raise CheckpointError(f"{where}; {source} cannot be read back: {e}") from None
        got = self._digest(name, module)
        if got != want:
            raise CheckpointError(
                f"{where}; {source} now holds other weights (sha256 {got[:16]}): the file "
                "changed since the checkpoint was saved"
            )
        module.weights_source = source
        logger.info("%s: restored '%s' from %s", self._current_file, name, source)

    def _load_model(self, checkpoint: Any):
        if isinstance(checkpoint.get("model"), dict):
            self._restore_frozen(checkpoint)
        own = self.model.state_dict()
        expected = {k: v.numel() for k, v in own.items()}
        if isinstance(checkpoint.get("model"), dict):
            problem = _broken_tensor_problem(checkpoint["model"], own)
            if problem:
                raise CheckpointError(f"{self._current_file}: {problem}")
        incompatible = super()._load_model(checkpoint)
        if incompatible is None:
            return incompatible
        wrong_shape = {k for k, *_ in incompatible.incorrect_shapes}
        missing = set(incompatible.missing_keys) | wrong_shape
        self.loaded_keys |= {k for k in expected if k not in missing}
        unloaded = [k for k in expected if k in missing and k not in ("pixel_mean", "pixel_std")]
        total = sum(expected.values()) or 1
        share = sum(expected[k] for k in unloaded) / total
        if share > self.max_unloaded_share:
            unexpected = [k for k in incompatible.unexpected_keys if k not in expected]
            raise CheckpointError(
                f"{self._current_file}: leaves {share:.1%} of the model's parameters unloaded "
                f"(MODEL.CHECKPOINT.MAX_UNLOADED_SHARE {self.max_unloaded_share:g}); missing: "
                f"{_summarise(k for k in unloaded if k not in wrong_shape)}; other shape: "
                f"{_summarise(wrong_shape)}; unexpected: {_summarise(unexpected)}. Is it a "
                "checkpoint of this config? Set MODEL.CHECKPOINT.MAX_UNLOADED_SHARE 1.0 to "
                "fine-tune from partial weights"
            )
        if unloaded:
            logger.info("%.1f%% of the parameters were not in %s", 100 * share, self._current_file)
        return incompatible


def load_for_inference(
    cfg, model, save_dir: str = "", *, resume: bool = False, source: str = "", override: str = ""
) -> OVAVSSCheckpointer:
    """Load ``MODEL.WEIGHTS`` (or, with ``resume``, the last checkpoint of ``save_dir``) into
    ``model`` for inference, and refuse a model left untrained.

    Args:
        source: the config file, named at the start of the error.
        override: how the caller's user allows an untrained model (default "set
            MODEL.ALLOW_UNTRAINED True").

    Raises:
        CheckpointError: a file that cannot be used.
        UntrainedModelError: no trainable parameter was loaded and ``MODEL.ALLOW_UNTRAINED`` is
            False.
    """
    checkpointer = OVAVSSCheckpointer.from_config(cfg, model, save_dir)
    weights = str(cfg.MODEL.WEIGHTS or "")
    if weights or resume:
        checkpointer.resume_or_load(weights, resume=resume)
    problem = untrained_problem(model, checkpointer.loaded_keys, weights)
    if problem:
        if not cfg.MODEL.ALLOW_UNTRAINED:
            raise UntrainedModelError(problem, source, override)
        logger.warning("%s (MODEL.ALLOW_UNTRAINED True: running it anyway)", problem)
    return checkpointer


class _PartCheckpointer(OVAVSSCheckpointer):
    """Loads a part's pretrained file into that part, partially; its caller logs, once, what was
    not loaded (:func:`load_training_start`), so the per-key lists of Detectron2 are not."""

    def __init__(self, part: nn.Module, prefix: str):
        super().__init__(part, max_unloaded_share=1.0)
        self.prefix = prefix
        self.unused: List[str] = []

    def _load_file(self, filename: str) -> Dict[str, Any]:
        data = super()._load_file(filename)
        weights = data["model"]
        if isinstance(weights, dict) and any(k.startswith(self.prefix) for k in weights):
            # a whole model's file (Mask2Former's COCO R50): its part, named as in the part
            cut = len(self.prefix)
            data["model"] = {k[cut:]: v for k, v in weights.items() if k.startswith(self.prefix)}
        return data

    def _log_incompatible_keys(self, incompatible) -> None:
        own = self.model.state_dict()
        self.unused = [k for k in incompatible.unexpected_keys if k not in own]


def load_pretrained_backbone(model: nn.Module, path: str) -> Tuple[Set[str], List[str]]:
    """Initialise ``model.backbone`` from the pretrained file ``path`` (partial loading allowed).

    Returns:
        the state-dict keys of ``model`` it filled (``backbone.*``), and the file's keys that
        fill nothing.

    Raises:
        CheckpointError: a missing or unreadable file, one that fills none of the backbone's
            parameters, or a model without a backbone.
    """
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, nn.Module):
        raise CheckpointError(
            f"{path}: MODEL.BACKBONE.WEIGHTS is set, but {type(model).__name__} has no backbone "
            "module to load it into"
        )
    if not downloads.is_url(path):
        problem = weights_file_problem(os.path.expanduser(path))
        if problem is not None:
            raise CheckpointError(f"{path}: {problem} (MODEL.BACKBONE.WEIGHTS)")
    part = _PartCheckpointer(backbone, "backbone.")
    part.load(os.path.expanduser(path))
    loaded = {f"backbone.{k}" for k in part.loaded_keys}
    # Parameters: Detectron2's FrozenBatchNorm2d fills the running statistics a file lacks.
    if not part.loaded_keys.intersection(n for n, _ in model.backbone.named_parameters()):
        raise CheckpointError(
            f"{path}: fills none of the backbone's parameters (MODEL.BACKBONE.WEIGHTS); file keys: "
            f"{_summarise(part.unused)}. Weights of another backbone?"
        )
    return loaded, part.unused


def _top_level_trainable(model: nn.Module) -> Dict[str, List[str]]:
    modules: Dict[str, List[str]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            modules.setdefault(name.split(".")[0], []).append(name)
    return modules


def _random_groups(model: nn.Module, loaded: Set[str]) -> List[str]:
    """What starts from random initialisation, grouped: a top-level module none of whose tensors
    was loaded, else its second-level modules with unloaded tensors; frozen pretrained modules
    and modules with their own pretrained weights (``weights_source``) are not."""
    own = [k for k in model.state_dict() if k not in loaded]
    frozen = tuple(f"{n}." for n in frozen_pretrained_modules(model))
    counts: Counter = Counter()
    for key in own:
        top = key.split(".")[0]
        if key.startswith(frozen) or getattr(getattr(model, top, None), "weights_source", ""):
            continue
        touched = any(k.startswith(f"{top}.") for k in loaded)
        counts[_group(key) if touched else top] += 1
    return [f"{g} ({n} tensors)" for g, n in counts.items()]


def all_random_problem(model: nn.Module, loaded: Set[str]) -> str:
    """Why every trained module of ``model`` starts from random initialisation, or '': none of
    its trainable tensors was loaded and no top-level module holding them has pretrained weights
    of its own (``weights_source``, e.g. D2EfficientNetLite's packaged ImageNet weights)."""
    modules = _top_level_trainable(model)
    if not modules:
        return ""
    for top, names in modules.items():
        if loaded.intersection(names) or getattr(getattr(model, top), "weights_source", ""):
            return ""
    return (
        "every trained module starts from random initialisation ("
        + ", ".join(modules)
        + "): MODEL.WEIGHTS and MODEL.BACKBONE.WEIGHTS load nothing into them; set "
        "MODEL.BACKBONE.WEIGHTS (e.g. detectron2://ImageNetPretrained/torchvision/R-50.pkl for a "
        "ResNet-50) for a pretrained start"
    )


def load_training_start(cfg, checkpointer: OVAVSSCheckpointer) -> None:
    """Load the weights a training run that does not resume starts from.

    ``MODEL.WEIGHTS`` when set (a trained or partial model: strict up to
    ``MODEL.CHECKPOINT.MAX_UNLOADED_SHARE``); otherwise the pretrained parts
    (``MODEL.BACKBONE.WEIGHTS``, partial), followed by one INFO line listing, grouped by module,
    what starts from random initialisation. One WARNING when every trained module does.
    """
    model = checkpointer.model
    weights = str(cfg.MODEL.WEIGHTS or "")
    backbone = str(cfg.MODEL.BACKBONE.WEIGHTS or "")
    if weights:
        checkpointer.load(weights)
        if backbone:
            logger.info(
                "MODEL.BACKBONE.WEIGHTS not read: MODEL.WEIGHTS %s gives the start", weights
            )
    elif backbone:
        loaded, unused = load_pretrained_backbone(model, backbone)
        checkpointer.loaded_keys |= loaded
        parts = [f"backbone from {backbone} ({len(loaded)} tensors)"]
        own = [
            f"{n} (from {m.weights_source})" for n, m in frozen_pretrained_modules(model).items()
        ]
        if own:
            parts.append("frozen, own weights: " + ", ".join(own))
        parts.append(
            "random initialisation: " + (", ".join(_random_groups(model, loaded)) or "none")
        )
        if unused:
            parts.append(f"unused in the file: {_summarise(unused)}")
        logger.info("Training starts from pretrained parts: %s", "; ".join(parts))
    problem = all_random_problem(model, checkpointer.loaded_keys)
    if problem:
        logger.warning("Training from scratch: %s", problem)
