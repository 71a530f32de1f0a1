"""A training data stream that a resumed run continues exactly.

Detectron2's ``TrainingSampler`` restarts its shuffled stream when training resumes, and the
random augmentations of a sample depend on which data-loader worker maps it. Here:

- :class:`ResumableTrainingSampler` yields ``(position, index)`` pairs of an infinite shuffled
  stream (``torch.randperm`` per epoch from one seed, every rank its ``position % world_size``
  share) and can start at the position of any iteration;
- :class:`PositionSeededDataset` maps the sample at stream position ``p`` with the Python, NumPy
  and torch RNGs seeded from ``(seed, p)``, so its augmentation does not depend on the worker,
  the number of workers or whether the run was resumed (the caller's RNG states are restored).

So iteration ``i`` of a resumed run receives the batch that iteration ``i`` of the uninterrupted
run received (aspect-ratio grouping keeps this only when every clip has the same orientation).
"""

import itertools
import logging
import random
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from detectron2.data.build import trivial_batch_collator, worker_init_reset_seed
from detectron2.data.common import AspectRatioGroupedDataset
from detectron2.utils import comm
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler

logger = logging.getLogger(__name__)

__all__ = ["ResumableTrainingSampler", "PositionSeededDataset", "build_resumable_train_loader"]


class ResumableTrainingSampler(Sampler):
    """Infinite shuffled ``(position, index)`` stream of one rank, restartable at any iteration.

    Args:
        size: number of dataset items.
        batch_size: items per iteration on this rank.
        shuffle: shuffle each epoch (else ``0, 1, ..., size - 1`` repeated).
        seed: seed of the shuffle, the same on every rank; default a seed shared by all ranks.
    """

    def __init__(
        self, size: int, batch_size: int, shuffle: bool = True, seed: Optional[int] = None
    ):
        if size <= 0:
            raise ValueError(f"the training set is empty (size {size})")
        self.size = int(size)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(comm.shared_random_seed() if seed is None else seed)
        self.rank = comm.get_rank()
        self.world_size = comm.get_world_size()
        self.start_iter = 0

    def set_start_iter(self, start_iter: int) -> None:
        """Begin the next ``iter()`` at the first item of iteration ``start_iter``."""
        self.start_iter = int(start_iter)

    def _global_stream(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        while True:
            if self.shuffle:
                yield from torch.randperm(self.size, generator=generator).tolist()
            else:
                yield from range(self.size)

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        first = self.start_iter * self.batch_size * self.world_size + self.rank
        stream = itertools.islice(enumerate(self._global_stream()), first, None, self.world_size)
        yield from stream


class PositionSeededDataset(Dataset):
    """``mapper(dicts[index])`` under RNG seeds derived from ``(sampler.seed, position)``.

    Args:
        dicts: the dataset dicts.
        mapper: the dataset mapper (may be random).
        sampler: the stream's sampler; its ``seed`` (restored on resume) is the base seed.
    """

    def __init__(
        self,
        dicts: Sequence[Dict],
        mapper: Callable[[Dict], Dict],
        sampler: ResumableTrainingSampler,
    ):
        self.dicts = dicts
        self.mapper = mapper
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.dicts)

    def __getitem__(self, key: Tuple[int, int]) -> Dict:
        position, index = key
        sample_seed = (self.sampler.seed * 1_000_003 + position) % (2**31)
        states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        try:
            random.seed(sample_seed)
            np.random.seed(sample_seed)
            torch.manual_seed(sample_seed)
            return self.mapper(self.dicts[index])
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])


def _identity(item: Dict) -> Dict:
    return item


def _uses_cuda(cfg) -> bool:
    """Whether the model of ``cfg`` runs on a GPU (``MODEL.DEVICE`` cuda and one visible)."""
    return str(cfg.MODEL.DEVICE).startswith("cuda") and torch.cuda.is_available()


def build_resumable_train_loader(
    cfg, dicts: List[Dict], mapper: Callable[[Dict], Dict]
) -> Tuple[torch.utils.data.DataLoader, ResumableTrainingSampler]:
    """The train loader of ``build_detection_train_loader``, with the resumable stream.

    Returns:
        the loader (lists of ``SOLVER.IMS_PER_BATCH / world_size`` mapped dicts) and its sampler,
        whose ``seed`` / ``set_start_iter`` the trainer checkpoints and restores.
    """
    if cfg.DATALOADER.SAMPLER_TRAIN != "TrainingSampler":
        raise ValueError(
            f"DATALOADER.SAMPLER_TRAIN {cfg.DATALOADER.SAMPLER_TRAIN}: ovavss_d2 trains with "
            "TrainingSampler (resumable)"
        )
    world_size = comm.get_world_size()
    total = cfg.SOLVER.IMS_PER_BATCH
    if total < 1:  # a batch of 0 clips would make the grouping loop wait forever
        raise ValueError(f"SOLVER.IMS_PER_BATCH {total}: must be at least 1")
    if total % world_size:
        raise ValueError(f"SOLVER.IMS_PER_BATCH {total} is not divisible by {world_size} processes")
    seed = cfg.SEED if cfg.SEED >= 0 else None
    sampler = ResumableTrainingSampler(len(dicts), total // world_size, seed=seed)
    dataset = PositionSeededDataset(dicts, mapper, sampler)
    # A map-style dataset: the sampler runs in the main process and batches arrive in its order
    # whatever the number of workers (an iterable dataset would give each worker its own batches).
    # Its own generator: creating a loader iterator (lazily, when grouping) draws a worker seed,
    # which must not come from the global RNG that the training run restores on resume.
    generator = torch.Generator()
    generator.manual_seed(sampler.seed)
    common = dict(
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        worker_init_fn=worker_init_reset_seed,
        generator=generator,
        pin_memory=_uses_cuda(cfg),  # page-locked clips: the model's copies do not block
    )
    if cfg.DATALOADER.ASPECT_RATIO_GROUPING:
        items = DataLoader(
            dataset, sampler=sampler, batch_size=None, collate_fn=_identity, **common
        )
        return AspectRatioGroupedDataset(items, sampler.batch_size), sampler
    batches = BatchSampler(sampler, sampler.batch_size, drop_last=True)
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=trivial_batch_collator, **common)
    return loader, sampler
