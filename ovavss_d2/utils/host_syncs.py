"""Count the calls of a piece of code that make the host wait for the accelerator (tests, checks).

A CUDA kernel runs after the Python call that launched it returns, so the host only waits where it
needs a device tensor's *value*: a download (``.cpu()``, ``.numpy()``, ``.item()``, ``.tolist()``,
``bool()``, ``int()``, ``float()``), an op whose output size depends on values (``nonzero``,
boolean-mask indexing, ``masked_select``, ``unique``), or a blocking upload (``.to(device)`` of a
host tensor without ``non_blocking=True``, ``torch.tensor(data, device=...)``: CUDA synchronises
the stream after a blocking copy from pageable memory).

:class:`HostSyncCounter` is a ``TorchFunctionMode`` that records those calls. On a CUDA model it
reads the tensors' real devices. On the CPU every tensor is on the same device, so it *simulates*
the split: tensors passed to :meth:`HostSyncCounter.mark_host` (the mapper's batch) and tensors
computed only from host tensors are host tensors; every other tensor (parameters, buffers, anything
that touched them, anything created with an explicit ``device=``, anything moved with ``.to(x)``
naming a device) is a device tensor. The simulation cannot tell ``.to(cpu_device)`` from an upload
(both name the CPU), so it counts downloads through ``.cpu()`` and friends only, not ``.to("cpu")``.

Example::

    counter = HostSyncCounter(torch.device("cpu"))
    counter.mark_host(batched_inputs)
    with counter:
        sum(model(batched_inputs).values()).backward()
    counter.counts  # {"Tensor.cpu": 3, ...}
"""

from collections import Counter
from typing import Any, Dict, List, Tuple

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

__all__ = ["HostSyncCounter"]

_HOST_ATTR = "_host_sync_counter_on_host"

# Reading a value: the host waits for the kernels that compute it.
_READS = {
    torch.Tensor.cpu: "Tensor.cpu",
    torch.Tensor.numpy: "Tensor.numpy",
    torch.Tensor.item: "Tensor.item",
    torch.Tensor.tolist: "Tensor.tolist",
    torch.Tensor.__bool__: "Tensor.__bool__",
    torch.Tensor.__int__: "Tensor.__int__",
    torch.Tensor.__float__: "Tensor.__float__",
    torch.Tensor.__index__: "Tensor.__index__",
    torch.Tensor.nonzero: "nonzero",
    torch.nonzero: "nonzero",
    torch.Tensor.masked_select: "masked_select",
    torch.masked_select: "masked_select",
    torch.Tensor.unique: "unique",
    torch.unique: "unique",
}
_INDEXING = {torch.Tensor.__getitem__: "__getitem__", torch.Tensor.__setitem__: "__setitem__"}
_FACTORIES = {torch.tensor, torch.as_tensor}
_MOVES = {torch.Tensor.to, torch.Tensor.cuda}


class HostSyncCounter(TorchFunctionMode):
    """Counts host-device synchronisations of the code run under it (see the module docstring).

    Args:
        device: the model's device; ``cpu`` simulates the host/device split.
    Attributes:
        counts: ``Counter`` of sync kind (``"Tensor.cpu"``, ``"upload"``, ...) -> calls.
        sites: ``(kind, file:line of the caller)`` of every counted call, in order.
    """

    def __init__(self, device: torch.device):
        super().__init__()
        self.simulated = torch.device(device).type == "cpu"
        self.counts: Counter = Counter()
        self.sites: List[Tuple[str, str]] = []

    @property
    def total(self) -> int:
        """All counted calls."""
        return sum(self.counts.values())

    def mark_host(self, obj: Any) -> None:
        """Declare the tensors of ``obj`` (nested dicts, lists, ``Instances`` fields) host ones."""
        if isinstance(obj, torch.Tensor):
            setattr(obj, _HOST_ATTR, True)
        elif isinstance(obj, dict):
            for value in obj.values():
                self.mark_host(value)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                self.mark_host(value)
        elif hasattr(obj, "get_fields"):
            self.mark_host(obj.get_fields())

    def is_host(self, tensor: torch.Tensor) -> bool:
        """Whether ``tensor`` lives (or, simulated, would live) in host memory."""
        if tensor.device.type != "cpu":
            return False
        return getattr(tensor, _HOST_ATTR, False) if self.simulated else True

    def _record(self, kind: str) -> None:
        import traceback

        frame = traceback.extract_stack(limit=3)[0]
        self.counts[kind] += 1
        self.sites.append((kind, f"{frame.filename}:{frame.lineno}"))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        on_device = any(not self.is_host(t) for t in tensors)
        names_device = kwargs.get("device") is not None
        if func in _READS and on_device:
            self._record(_READS[func])
        elif func in _INDEXING and on_device and _has_bool_index(args[1:2]):
            self._record(_INDEXING[func] + "[bool]")
        elif func in _FACTORIES and names_device and not tensors:
            self._record("upload")  # torch.tensor(host data, device=...)
        elif func in _MOVES and tensors and self.is_host(tensors[0]):
            if _moves_to_device(func, args, kwargs) and not kwargs.get("non_blocking", False):
                self._record("upload")
        result = func(*args, **kwargs)
        if not self.simulated:
            return result
        if func in (torch.Tensor.cpu, torch.Tensor.numpy):
            host = True
        elif func in _MOVES and _moves_to_device(func, args, kwargs):
            host = False
        else:
            host = not on_device and not names_device
        if func in _MOVES or func is torch.Tensor.cpu:
            if any(result is t for t in tensors):  # a CPU "move" returns its input: keep its mark
                result = result.view_as(result)
        _mark(result, host)
        return result


def _has_bool_index(index: Tuple) -> bool:
    """Whether an indexing argument holds a boolean tensor (its output size depends on values)."""
    leaves = tree_flatten(index)[0]
    return any(isinstance(t, torch.Tensor) and t.dtype == torch.bool for t in leaves)


def _moves_to_device(func, args: Tuple, kwargs: Dict) -> bool:
    """Whether a ``.to(...)`` / ``.cuda()`` call names a device (not only a dtype)."""
    if func is torch.Tensor.cuda:
        return True
    if kwargs.get("device") is not None:
        return True
    return any(isinstance(a, (torch.device, str, torch.Tensor)) for a in args[1:])


def _mark(result: Any, host: bool) -> None:
    for t in tree_flatten(result)[0]:
        if isinstance(t, torch.Tensor):
            try:
                setattr(t, _HOST_ATTR, host)
            except (AttributeError, RuntimeError):  # some C++-owned views refuse attributes
                pass
