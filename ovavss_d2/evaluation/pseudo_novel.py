"""Pseudo-novel cross-validation over base classes: choosing open-vocabulary settings without
seeing the novel classes.

The novel classes of val and test must not steer any choice. Instead some BASE classes of the
validation split play "novel" in turn: the base classes are split into folds; in each fold the
fold's classes are pseudo-novel (the learned classifier's knowledge of them is withheld and the
sources' novel weights apply to them) and the remaining base classes are pseudo-base. A setting is
scored by the harmonic mean of pseudo-base and pseudo-novel accuracy, pooled over the folds
(generalised zero-shot practice). Real novel classes appear in no fold, in no vocabulary and in no
score (``tools/calibrate_class_sources.py select``; docs/CLASS_SOURCES.md).
"""

from typing import Dict, List, Sequence

import numpy as np

__all__ = ["harmonic_mean", "pseudo_novel_folds", "split_accuracy"]


def pseudo_novel_folds(
    base_ids: Sequence[int], num_folds: int, seed: int = 0, all_ids: Sequence[int] = ()
) -> List[List[int]]:
    """Split the base class ids into ``num_folds`` disjoint pseudo-novel sets (a seeded shuffle,
    then round robin; sizes differ by at most one).

    Args:
        base_ids: the base (training) class ids; nothing else may be passed.
        num_folds: 2 .. len(base_ids) - 1 (each fold keeps some pseudo-base classes).
        all_ids: optional, every class id of the vocabulary: only to check that ``base_ids`` is
            a subset (a caller passing novel ids by mistake gets an error, not a silent fold).
    Returns:
        ``num_folds`` sorted lists of base ids; their union is ``base_ids``.
    """
    base = sorted(set(int(i) for i in base_ids))
    if len(base) != len(base_ids):
        raise ValueError(f"base_ids lists a class twice: {list(base_ids)}")
    if all_ids and not set(base) <= set(int(i) for i in all_ids):
        raise ValueError(f"base ids {sorted(set(base) - set(all_ids))} are not in the vocabulary")
    if not 2 <= num_folds < len(base):
        raise ValueError(
            f"num_folds must be in [2, {len(base) - 1}] for {len(base)} base classes, "
            f"got {num_folds}"
        )
    order = np.random.RandomState(seed).permutation(base)
    return [sorted(int(i) for i in order[f::num_folds]) for f in range(num_folds)]


def split_accuracy(pred: np.ndarray, target: np.ndarray, is_novel: np.ndarray) -> Dict[str, float]:
    """Naming accuracy of base and novel objects and their cross-naming rates.

    Args:
        pred, target: ``(N,)`` class ids named and true.
        is_novel: bool ``(C,)`` over class ids: the classes playing novel.
    Returns:
        ``base``, ``novel`` (accuracies), ``h`` (their harmonic mean), ``base_named_novel``,
        ``novel_named_base`` (shares of the objects), ``n_base``, ``n_novel``.
    """
    pred, target = np.asarray(pred), np.asarray(target)
    t_novel, p_novel = is_novel[target], is_novel[pred]
    hit = pred == target
    n_base, n_novel = int((~t_novel).sum()), int(t_novel.sum())
    base = float(hit[~t_novel].mean()) if n_base else float("nan")
    novel = float(hit[t_novel].mean()) if n_novel else float("nan")
    return {
        "base": base,
        "novel": novel,
        "h": harmonic_mean(base, novel),
        "base_named_novel": float(p_novel[~t_novel].mean()) if n_base else float("nan"),
        "novel_named_base": float((~p_novel)[t_novel].mean()) if n_novel else float("nan"),
        "n_base": n_base,
        "n_novel": n_novel,
    }


def harmonic_mean(a: float, b: float) -> float:
    """``2ab / (a + b)``; 0 when both are 0."""
    return 2 * a * b / (a + b) if a + b > 0 else 0.0
