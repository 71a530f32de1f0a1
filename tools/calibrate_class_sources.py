#!/usr/bin/env python
"""Calibrate the class-source ensemble on ground-truth masks with pseudo-novel base classes.

Three steps, each a subcommand:

* ``collect``: run the model's decoder once over a dataset and cache, per ground-truth object,
  what the sources need (the learned classifier's logits of the query embeddings pooled over the
  object's mask, the sound tags of each second, the image tags of the object's masked crops, the
  mask's presence per second) in one ``.npz``; everything later is re-computed from it in
  seconds.
* ``select``: the pseudo-novel protocol. Only the BASE classes of the dataset are used: they are
  split into folds (``ovavss_d2.evaluation.pseudo_novel``); in each fold the fold's classes play
  "novel" (the learned classifier's logits of those classes are masked out, the sources' novel
  weights apply to them), the vocabulary is the base classes only and the objects of the real
  novel classes are dropped. Each setting is scored by the harmonic mean of pseudo-base and
  pseudo-novel naming accuracy pooled over the folds. The real novel classes (their names and
  their objects) are never seen while choosing.
* ``report``: base / novel naming accuracy, base-named-novel and novel-named-base rates of given
  settings on a dataset's full vocabulary, split by the clip's number of sources (1 vs 2-3).

    OMP_NUM_THREADS=1 python tools/calibrate_class_sources.py collect \\
        --config-file configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml \\
        --dataset avss_synth_val --out output/calib/val.npz
    OMP_NUM_THREADS=1 python tools/calibrate_class_sources.py select \\
        --cache output/calib/val.npz --json output/calib/select.json
    OMP_NUM_THREADS=1 python tools/calibrate_class_sources.py report \\
        --cache output/calib/test.npz --settings output/calib/select.json
"""

import argparse
import itertools
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger("calibrate_class_sources")

SOURCES = ("learned", "audio_tags", "image_tags")


# ---------------------------------------------------------------------------------------------
# collect
# ---------------------------------------------------------------------------------------------


def _gt_masks(record: dict, num_label_classes: int, size: Tuple[int, int]):
    """Float ``(O, T, H, W)`` masks (nearest-resized to ``size``) and label ids of a clip."""
    from ovavss_d2.data.labels import read_label_map

    labels = np.stack(
        [read_label_map(f, num_label_classes) for f in record["sem_seg_file_names"]]
    )  # (T, H0, W0)
    ids = sorted(int(c) for c in np.unique(labels) if 0 < c < num_label_classes)
    lab = torch.from_numpy(labels.astype(np.float32))[:, None]
    lab = F.interpolate(lab, size=tuple(size), mode="nearest")[:, 0]  # (T, H, W)
    masks = torch.stack([(lab == c).float() for c in ids]) if ids else torch.zeros(0, *lab.shape)
    return masks, ids


@torch.no_grad()
def collect(args) -> None:
    """Cache the per-object source inputs of ``--dataset`` in ``--out`` (.npz)."""
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.modeling import build_model

    from ovavss_d2 import get_cfg
    from ovavss_d2.checkpoint import OVAVSSCheckpointer
    from ovavss_d2.data import build_dataset_mapper
    from ovavss_d2.modeling.class_sources import (
        combine_evidence,
        foreground_probability,
        objectness_from_logits,
    )
    from ovavss_d2.modeling.class_sources.audio_tags import tag_scores
    from ovavss_d2.modeling.class_sources.tag_filters import suppress_tags, top_k_scores
    from ovavss_d2.modeling.crops import mask_pool
    from ovavss_d2.modeling.meta_arch.inference import clip_queries, resized_mask_probs

    cfg = get_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    model = build_model(cfg).eval()
    OVAVSSCheckpointer(model, max_unloaded_share=1.0).load(cfg.MODEL.WEIGHTS)
    meta = MetadataCatalog.get(args.dataset)
    records = DatasetCatalog.get(args.dataset)[: args.limit or None]
    mapper = build_dataset_mapper(cfg, is_train=False)
    model.set_vocabulary([tuple(n) for n in meta.prompt_names[1:]])
    prompts = model._active_vocabulary()
    is_base = model._base_mask(prompts)
    class_embeds = model.text_classifier.get(prompts).to(model.device)
    audio_src = model.class_sources["audio_tags"]
    image_src = model.class_sources["image_tags"]
    top_audio, top_image = audio_src.top_k, image_src.top_k
    rows: Dict[str, List] = {k: [] for k in ("learned", "audio_idx", "audio_val", "presence")}
    rows.update({k: [] for k in ("image_idx", "image_val", "target", "clip", "num_sources")})
    rows["check"] = []
    start = time.perf_counter()
    for i, rec in enumerate(records):
        x = mapper(rec)
        images, audio, num_frames = model._preprocess([x])
        outputs = model._decode(images.tensor, audio, num_frames)
        padded, size = tuple(images.tensor.shape[-2:]), tuple(images.image_sizes[0])
        masks, ids = _gt_masks(rec, meta.label_num_classes, size)
        if not ids:
            continue
        clip = clip_queries(outputs, 0, x["images"], prompts, class_embeds, is_base, padded, size)
        learned_all = model.class_sources["learned"](clip)
        p_fg = foreground_probability(
            objectness_from_logits(clip.pred_objectness),
            {"learned": learned_all},
            model.objectness_exponent,
            model.background_exponent,
            clip.pred_embeds.shape[0],
        )
        # each pixel shared among the queries as in the semantic inference, averaged over the mask
        probs = resized_mask_probs(outputs["pred_masks"][0].float(), padded, size)
        share = p_fg.to(probs)[:, None, None, None] * probs
        share = share / share.sum(0, keepdim=True).clamp(min=1e-6)
        pooled, mass = mask_pool(share.transpose(0, 1), masks.transpose(0, 1))  # (T,O,Q), (T,O)
        weights = (pooled * mass[..., None]).sum(0) / mass.sum(0)[:, None].clamp(min=1e-6)
        embeds = weights @ clip.pred_embeds.float()  # (O, D)
        rows["learned"].append(model.embedding_classifier(embeds[None], class_embeds)[0].numpy())
        scores = tag_scores(audio_src.audio_encoder.classifier, clip.audio_embeds)  # (T, J)
        if audio_src.keep is not None:
            scores = suppress_tags(scores, audio_src.keep)
        top = top_k_scores(scores, top_audio).topk(top_audio, dim=-1)  # (T, N)
        label_probs = image_src.label_probs(x["images"], masks).nan_to_num(1e-3)  # (O, J)
        itop = label_probs.topk(top_image, dim=-1)
        if args.check:  # the model's own sources and ensemble on the same objects
            gt_clip = replace(  # every object is one query (O <= IMAGE_TAGS.MAX_QUERIES here)
                clip,
                pred_embeds=embeds,
                pred_objectness=torch.zeros(len(ids), 2),
                mask_probs=lambda: masks,
            )
            evidence = {n: src(gt_clip) for n, src in model.class_sources.items()}
            _, p_cls = combine_evidence(evidence, model.source_weights, is_base, model.base_bias)
            rows["check"].extend(p_cls.argmax(-1).tolist())
        for o, c in enumerate(ids):
            rows["audio_idx"].append(top.indices.numpy())
            rows["audio_val"].append(top.values.numpy())
            rows["image_idx"].append(itop.indices[o].numpy())
            rows["image_val"].append(itop.values[o].numpy())
            rows["presence"].append(masks[o].flatten(1).sum(-1).numpy())
            rows["target"].append(c - 1)
            rows["clip"].append(i)
            rows["num_sources"].append(len(ids))
        if (i + 1) % 20 == 0:
            logger.info("%d/%d clips, %.0f s", i + 1, len(records), time.perf_counter() - start)
    audio_labels = audio_src.text_classifier.get(audio_src.label_names).float()
    image_labels = image_src.text_classifier.get(image_src.label_names).float()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    np.savez_compressed(
        args.out,
        learned=np.concatenate(rows["learned"]).astype(np.float32),  # (N, K+1)
        audio_idx=np.stack(rows["audio_idx"]),  # (N, T, top) tag ids per second
        audio_val=np.stack(rows["audio_val"]).astype(np.float32),
        image_idx=np.stack(rows["image_idx"]),  # (N, top) ImageNet label ids
        image_val=np.stack(rows["image_val"]).astype(np.float32),
        presence=np.stack(rows["presence"]).astype(np.float32),  # (N, T) mask pixels per frame
        target=np.array(rows["target"]),
        clip=np.array(rows["clip"]),
        num_sources=np.array(rows["num_sources"]),
        is_base=is_base.numpy(),
        names=np.array([p[0] for p in prompts]),
        audio_labels=audio_labels.numpy(),
        audio_classes=audio_src.text_classifier.get(prompts).float().numpy(),
        image_labels=image_labels.numpy(),
        image_classes=image_src.text_classifier.get(prompts).float().numpy(),
        image_speaks=image_src.speaks(prompts).numpy(),
        audio_scale=audio_src.logit_scale,
        check=np.array(rows["check"], dtype=np.int64),  # the model's ensemble, with --check
        image_scale=image_src.logit_scale,
    )
    logger.info(
        "wrote %s (%d objects, %.0f s)", args.out, len(rows["target"]), time.perf_counter() - start
    )


# ---------------------------------------------------------------------------------------------
# offline: the sources and their ensemble re-computed from the cache
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """One setting of the naming pipeline (config keys in brackets)."""

    learned: Tuple[float, float] = (1.0, 0.0)  # (BASE_WEIGHTS, NOVEL_WEIGHTS) of each source
    audio_tags: Tuple[float, float] = (0.5, 0.4)
    image_tags: Tuple[float, float] = (0.25, 0.5)
    base_bias: float = 0.0  # MODEL.CLASS_SOURCES.BASE_BIAS
    audio_center: str = ""  # AUDIO_TAGS.CENTER
    image_center: str = ""  # IMAGE_TAGS.CENTER
    assign: str = "none"  # AUDIO_TAGS.ASSIGN.VISUAL: none / learned / image_tags / both
    assign_scale: float = 30.0  # AUDIO_TAGS.ASSIGN.SCALE

    def weights(self) -> Dict[str, Tuple[float, float]]:
        return {s: getattr(self, s) for s in SOURCES}


def load_cache(path: str) -> Dict[str, np.ndarray]:
    """The arrays of a ``collect`` cache."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no cache {path}: run the 'collect' subcommand first")
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _log_softmax_subset(logits: torch.Tensor, speaks: Optional[torch.Tensor]) -> torch.Tensor:
    """``(N, K')`` log-softmax; ``log(1 / K')`` where ``speaks (K',)`` is False."""
    lp = logits.log_softmax(-1)
    if speaks is not None:
        lp = lp.masked_fill(~speaks, -float(np.log(logits.shape[-1])))
    return lp


def source_log_probs(
    cache: Dict[str, np.ndarray],
    vocab: np.ndarray,
    withheld: np.ndarray,
    s: Settings,
) -> Dict[str, torch.Tensor]:
    """Each source's ``(N, K')`` log-probabilities over the class ids ``vocab`` (K'), the learned
    classifier withholding (not speaking about) the class ids in ``withheld``."""
    from ovavss_d2.modeling.class_sources.hubness import centered, label_mean
    from ovavss_d2.modeling.class_sources.sound_assignment import (
        assigned_sound_embeds,
        tag_assignment,
        visual_text_embeds,
    )

    vocab = torch.as_tensor(vocab)
    learned_speaks = ~torch.isin(vocab, torch.as_tensor(withheld, dtype=vocab.dtype))
    learned = torch.from_numpy(cache["learned"])[:, vocab]
    learned = learned.masked_fill(~learned_speaks, -1e4)
    out = {"learned": _log_softmax_subset(learned, learned_speaks)}
    # image tags
    il = torch.from_numpy(cache["image_labels"])
    imean = label_mean(il, s.image_center)
    u = F.normalize(
        (torch.from_numpy(cache["image_val"])[..., None] * il[cache["image_idx"]]).sum(1), dim=-1
    )
    ic = centered(torch.from_numpy(cache["image_classes"])[vocab], imean)
    image_logits = float(cache["image_scale"]) * centered(u, imean) @ ic.t()
    speaks = torch.from_numpy(cache["image_speaks"])[vocab]
    out["image_tags"] = _log_softmax_subset(image_logits, speaks)
    # sound tags, per object, per second
    al = torch.from_numpy(cache["audio_labels"])
    amean = label_mean(al, s.audio_center)
    ac_raw = torch.from_numpy(cache["audio_classes"])[vocab]
    ac = centered(ac_raw, amean)
    audio_logits = torch.zeros(len(cache["target"]), len(vocab))
    presence = torch.from_numpy(cache["presence"])
    for c in np.unique(cache["clip"]):
        rows = np.nonzero(cache["clip"] == c)[0]
        idx, val = cache["audio_idx"][rows[0]], torch.from_numpy(cache["audio_val"][rows[0]])
        tags = al[idx]  # (T, N, E)
        present = presence[rows] > 0  # (O, T)
        if s.assign == "none":
            share = torch.ones(len(rows), *val.shape)
        else:
            p_vis = _visual_probs(out, rows, s.assign)
            share = tag_assignment(visual_text_embeds(p_vis, ac_raw), tags, present, s.assign_scale)
        sound = centered(assigned_sound_embeds(val, tags, share), amean)  # (O, T, E)
        logits = float(cache["audio_scale"]) * sound @ ac.t()  # (O, T, K')
        w = presence[rows] / presence[rows].sum(1, keepdim=True).clamp(min=1e-6)
        audio_logits[rows] = torch.einsum("ot,otk->ok", w, logits)
    out["audio_tags"] = audio_logits.log_softmax(-1)
    return out


def _visual_probs(log_probs: Dict[str, torch.Tensor], rows, visual: str) -> torch.Tensor:
    """``(O, K')`` visual class distribution of the clip's objects for the sound assignment."""
    if visual == "both":
        return (log_probs["learned"][rows] + log_probs["image_tags"][rows]).softmax(-1)
    if visual not in ("learned", "image_tags"):
        raise ValueError(f"assign visual must be none / learned / image_tags / both: {visual!r}")
    return log_probs[visual][rows].softmax(-1)


def ensemble(
    log_probs: Dict[str, torch.Tensor], is_base: torch.Tensor, s: Settings
) -> torch.Tensor:
    """``(N, K')`` log-scores of the weighted geometric ensemble with calibrated stacking."""
    total = 0
    for name, (wb, wn) in s.weights().items():  # tensors (the combiner's fit) or floats
        wb, wn = torch.as_tensor(wb, dtype=torch.float32), torch.as_tensor(wn, dtype=torch.float32)
        w = torch.where(is_base, wb, wn)
        total = total + w * log_probs[name]
    return total - s.base_bias * is_base.float()


def fold_views(cache: Dict[str, np.ndarray], folds: Sequence[Sequence[int]]) -> List[Dict]:
    """Per fold: the vocabulary (real base classes only), the withheld (pseudo-novel) ids, the
    objects (of real base classes only) and the pseudo base flags over the vocabulary."""
    base_ids = np.nonzero(cache["is_base"])[0]
    keep = np.isin(cache["target"], base_ids)
    views = []
    for fold in folds:
        if not set(fold) <= set(base_ids.tolist()):
            raise ValueError(f"fold {fold} holds a class that is not base")
        views.append(
            {
                "vocab": base_ids,
                "withheld": np.asarray(fold),
                "rows": np.nonzero(keep)[0],
                "targets": cache["target"][keep],
                "is_base": torch.from_numpy(~np.isin(base_ids, fold)),
            }
        )
    return views


def fold_log_probs(cache, views, s: Settings) -> List[Dict[str, torch.Tensor]]:
    """Per fold, the sources' log-probabilities of its objects over its vocabulary."""
    out = []
    for v in views:
        lp = source_log_probs(cache, v["vocab"], v["withheld"], s)
        out.append({k: x[v["rows"]] for k, x in lp.items()})
    return out


def score_folds(cache, views, log_probs, s: Settings) -> Dict[str, float]:
    """Pseudo-base / pseudo-novel accuracies pooled over the folds, and their harmonic mean."""
    preds, targets, novel_flags = [], [], []
    for v, lp in zip(views, log_probs):
        pred = v["vocab"][ensemble(lp, v["is_base"], s).argmax(-1).numpy()]
        preds.append(pred)
        targets.append(cache["target"][v["rows"]])
        novel_flags.append(np.isin(cache["target"][v["rows"]], v["withheld"]))
    pred, target = np.concatenate(preds), np.concatenate(targets)
    return _pooled_split(pred, target, np.concatenate(novel_flags), views)


def _pooled_split(pred, target, t_novel, views) -> Dict[str, float]:
    """Accuracies with the pseudo-novel flag of each object's own fold (its prediction is
    pseudo-novel when it lies in that fold's withheld set)."""
    from ovavss_d2.evaluation.pseudo_novel import harmonic_mean

    p_novel = np.concatenate(
        [np.isin(p, v["withheld"]) for p, v in zip(np.split(pred, _offsets(views)), views)]
    )
    hit = pred == target
    base, novel = float(hit[~t_novel].mean()), float(hit[t_novel].mean())
    return {
        "base": base,
        "novel": novel,
        "h": harmonic_mean(base, novel),
        "base_named_novel": float(p_novel[~t_novel].mean()),
        "novel_named_base": float((~p_novel)[t_novel].mean()),
        "n_base": int((~t_novel).sum()),
        "n_novel": int(t_novel.sum()),
    }


def _offsets(views) -> List[int]:
    sizes = np.cumsum([len(v["rows"]) for v in views])
    return sizes[:-1].tolist()


def fit_combiner(views, log_probs, s: Settings, steps: int = 300) -> Settings:
    """The ensemble's weights and base bias fitted by maximum likelihood on the pseudo-novel
    folds (cross-entropy of the true class, pseudo-base and pseudo-novel objects weighted
    equally; weights kept >= 0; the learned classifier's novel weight stays 0)."""
    raw = (
        torch.tensor(
            [s.learned[0], s.audio_tags[0], s.audio_tags[1], s.image_tags[0], s.image_tags[1]]
        )
        .clamp(min=1e-3)
        .log()
        .requires_grad_(True)
    )
    bias = torch.tensor(float(s.base_bias), requires_grad=True)
    data = []
    for v, lp in zip(views, log_probs):
        target = torch.from_numpy(np.searchsorted(v["vocab"], _targets_of(v)))
        t_novel = ~v["is_base"][target]
        data.append((lp, v["is_base"], target, t_novel))
    opt = torch.optim.Adam([raw, bias], lr=0.05)
    with torch.enable_grad():
        for _ in range(steps):
            w = raw.exp()
            trial = replace(
                s,
                learned=(w[0], 0.0),
                audio_tags=(w[1], w[2]),
                image_tags=(w[3], w[4]),
                base_bias=bias,
            )
            losses_b, losses_n = [], []
            for lp, is_base, target, t_novel in data:
                ce = F.cross_entropy(ensemble(lp, is_base, trial), target, reduction="none")
                losses_b.append(ce[~t_novel])
                losses_n.append(ce[t_novel])
            loss = torch.cat(losses_b).mean() + torch.cat(losses_n).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    w = [round(float(x), 3) for x in raw.detach().exp()]
    return replace(
        s,
        learned=(w[0], 0.0),
        audio_tags=(w[1], w[2]),
        image_tags=(w[3], w[4]),
        base_bias=round(float(bias), 3),
    )


def _targets_of(view) -> np.ndarray:
    return view["targets"]


# ---------------------------------------------------------------------------------------------
# select / report
# ---------------------------------------------------------------------------------------------

WEIGHT_GRID = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
BIAS_GRID = (-3.0, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0)
SCALES = (10.0, 30.0)


def representations() -> List[Settings]:
    """Centring x sound assignment, with the shipped weights."""
    assigns = [("none", 30.0)] + [(v, t) for v in ("learned", "image_tags", "both") for t in SCALES]
    return [
        Settings(audio_center=ac, image_center=ic, assign=a, assign_scale=t)
        for ac, ic in itertools.product(("", "labels"), repeat=2)
        for a, t in assigns
    ]


def coordinate_descent(score, s: Settings, rounds: int = 2) -> Settings:
    """Each weight (the learned novel weight stays 0) over :data:`WEIGHT_GRID`, then the bias over
    :data:`BIAS_GRID`, keeping improvements of ``score(settings) -> h``."""
    best = score(s)
    for _ in range(rounds):
        improved = False
        for name, part in [
            ("learned", 0),
            ("audio_tags", 0),
            ("audio_tags", 1),
            ("image_tags", 0),
            ("image_tags", 1),
        ]:
            for value in WEIGHT_GRID:
                w = list(getattr(s, name))
                w[part] = value
                trial = replace(s, **{name: tuple(w)})
                h = score(trial)
                if h > best + 1e-9:
                    best, s, improved = h, trial, True
        for bias in BIAS_GRID:
            trial = replace(s, base_bias=bias)
            h = score(trial)
            if h > best + 1e-9:
                best, s, improved = h, trial, True
        if not improved:
            break
    return s


def nested_estimate(cache, views, chosen: Settings, how: str) -> Dict[str, float]:
    """Leave one fold out: the chosen representation's weights re-chosen (by ``how``) on the
    other folds and scored on the left-out one; pooled over the folds. An estimate of the weight
    choice free of its own selection (the representation itself was chosen on all folds)."""
    preds = []
    for f, view in enumerate(views):
        rest = [v for i, v in enumerate(views) if i != f]
        rep = replace(chosen, **{k: getattr(Settings(), k) for k in SOURCES}, base_bias=0.0)
        lps = fold_log_probs(cache, rest, rep)
        if how == "combiner":
            s = fit_combiner(rest, lps, rep)
        elif how == "descent":
            s = coordinate_descent(lambda x: score_folds(cache, rest, lps, x)["h"], rep)
        elif how == "stacking":
            s = max(
                (replace(rep, base_bias=b) for b in BIAS_GRID),
                key=lambda x: score_folds(cache, rest, lps, x)["h"],
            )
        else:
            s = rep
        preds.append((view, s))
    lps = [fold_log_probs(cache, [v], s)[0] for v, s in preds]
    out = {}
    for i, (v, s) in enumerate(preds):
        out[f"fold{i}"] = score_folds(cache, [v], [lps[i]], s)
    hits = {"base": [], "novel": []}
    for (v, s), lp in zip(preds, lps):
        pred = v["vocab"][ensemble(lp, v["is_base"], s).argmax(-1).numpy()]
        ok = pred == v["targets"]
        t_novel = np.isin(v["targets"], v["withheld"])
        hits["base"].extend(ok[~t_novel].tolist())
        hits["novel"].extend(ok[t_novel].tolist())
    from ovavss_d2.evaluation.pseudo_novel import harmonic_mean

    base, novel = float(np.mean(hits["base"])), float(np.mean(hits["novel"]))
    out.update(base=base, novel=novel, h=harmonic_mean(base, novel))
    return out


def select(args) -> None:
    """The pseudo-novel protocol over the representations, stacking, descent and the combiner."""
    from ovavss_d2.evaluation.pseudo_novel import pseudo_novel_folds

    cache = load_cache(args.cache)
    base_ids = np.nonzero(cache["is_base"])[0].tolist()
    folds = pseudo_novel_folds(base_ids, args.folds, args.seed, range(len(cache["is_base"])))
    views = fold_views(cache, folds)
    logger.info("folds (pseudo-novel): %s", [[str(cache["names"][i]) for i in f] for f in folds])
    rows = []
    start = time.perf_counter()
    for rep in representations():
        lps = fold_log_probs(cache, views, rep)

        def h_of(s: Settings) -> float:
            return score_folds(cache, views, lps, s)["h"]

        stacked = max((replace(rep, base_bias=b) for b in BIAS_GRID), key=h_of)
        candidates = {
            "shipped weights": rep,
            "stacking": stacked,
            "descent": coordinate_descent(h_of, rep),
            "combiner": fit_combiner(views, lps, rep),
        }
        for how, s in candidates.items():
            res = score_folds(cache, views, lps, s)
            rows.append({"how": how, "settings": _plain(s), **res})
            logger.info(
                "%-16s %s h %.3f (base %.3f novel %.3f)",
                how,
                _short(s),
                res["h"],
                res["base"],
                res["novel"],
            )
    best = max(rows, key=lambda r: r["h"])
    shipped = rows[0]
    nested = nested_estimate(cache, views, Settings(**_unplain(best["settings"])), best["how"])
    report = {
        "cache": args.cache,
        "folds": [[str(cache["names"][i]) for i in f] for f in folds],
        "shipped": shipped,
        "chosen": best,
        "nested": nested,
        "rows": rows,
        "seconds": time.perf_counter() - start,
    }
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1)
    logger.info(
        "shipped: h %.3f; chosen (%s): %s h %.3f; left-one-fold-out h %.3f (base %.3f novel "
        "%.3f); wrote %s",
        shipped["h"],
        best["how"],
        _short(Settings(**_unplain(best["settings"]))),
        best["h"],
        nested["h"],
        nested["base"],
        nested["novel"],
        args.json,
    )


def _plain(s: Settings) -> Dict:
    return {k: (list(map(float, v)) if isinstance(v, tuple) else v) for k, v in asdict(s).items()}


def _unplain(d: Dict) -> Dict:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}


def _short(s: Settings) -> str:
    return (
        f"w {[tuple(round(float(x), 2) for x in w) for w in s.weights().values()]} "
        f"bias {float(s.base_bias):g} center {s.audio_center or '-'}/{s.image_center or '-'} "
        f"assign {s.assign}/{s.assign_scale:g}"
    )


def report(args) -> None:
    """Naming on the full vocabulary of a cache: shipped vs the given settings, by source count."""
    cache = load_cache(args.cache)
    vocab = np.arange(len(cache["is_base"]))
    is_base = torch.from_numpy(cache["is_base"])
    named = {
        "shipped": Settings(),
        "learned alone": Settings(learned=(1.0, 1.0), audio_tags=(0.0, 0.0), image_tags=(0.0, 0.0)),
    }
    if args.settings:
        with open(args.settings) as f:
            named["chosen"] = Settings(**_unplain(json.load(f)["chosen"]["settings"]))
    from ovavss_d2.evaluation.pseudo_novel import split_accuracy

    out = {}
    if len(cache.get("check", ())):
        which = "chosen" if args.check_chosen else "shipped"
        lp = source_log_probs(cache, vocab, np.zeros(0, int), named[which])
        agree = float(
            (ensemble(lp, is_base, named[which]).argmax(-1).numpy() == cache["check"]).mean()
        )
        print(f"offline {which} ensemble = the model's own names on {agree:.1%} of the objects")
        out["check_agreement"] = agree
    groups = {
        "all": np.ones(len(cache["target"]), bool),
        "1 source": cache["num_sources"] == 1,
        "2-3 sources": cache["num_sources"] >= 2,
    }
    print(f"\n{args.cache}: {len(cache['target'])} objects")
    print("| settings | objects | base acc | novel acc | H | base named novel | novel named base |")
    print("|---|---|---|---|---|---|---|")
    for label, s in named.items():
        lp = source_log_probs(cache, vocab, np.zeros(0, int), s)
        pred = ensemble(lp, is_base, s).argmax(-1).numpy()
        out[label] = {"settings": _plain(s)}
        for g, sel in groups.items():
            r = split_accuracy(pred[sel], cache["target"][sel], ~cache["is_base"])
            out[label][g] = r
            print(
                f"| {label} | {g} ({r['n_base']} + {r['n_novel']}) | {r['base']:.3f} | "
                f"{r['novel']:.3f} | {r['h']:.3f} | {r['base_named_novel']:.3f} | "
                f"{r['novel_named_base']:.3f} |"
            )
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="cache the per-object source inputs of a dataset")
    c.add_argument("--config-file", required=True)
    c.add_argument("--dataset", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--limit", type=int, default=0, help="first N clips only (0: all)")
    c.add_argument(
        "--check", action="store_true", help="also store the model's own ensemble's names"
    )
    c.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE")
    sel = sub.add_parser("select", help="the pseudo-novel protocol on a (val) cache")
    sel.add_argument("--cache", required=True)
    sel.add_argument("--json", required=True)
    sel.add_argument("--folds", type=int, default=4)
    sel.add_argument("--seed", type=int, default=0)
    rep = sub.add_parser("report", help="naming on a cache's full vocabulary")
    rep.add_argument("--cache", required=True)
    rep.add_argument("--settings", default="", help="a 'select' JSON: its chosen settings")
    rep.add_argument("--json", default="")
    rep.add_argument(
        "--check-chosen",
        action="store_true",
        help="compare a --check cache (collected with the chosen config) with the chosen settings",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_grad_enabled(False)
    if args.command == "collect":
        import ovavss_d2.data.datasets  # noqa: F401  (registers the datasets)

        collect(args)
    elif args.command == "select":
        select(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
