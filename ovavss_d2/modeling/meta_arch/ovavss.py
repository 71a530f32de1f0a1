"""OV-AVSS, open-vocabulary audio-visual semantic segmentation (META_ARCHITECTURE ``OVAVSS``).

Shape letters: B clips, T frames per clip, Q queries, K classes of a vocabulary (+1 background or
no-object where written K+1), E text-embedding size, C audio-embedding size, L x M log-mel patch,
H x W (padded) image size, h x w = H/4 x W/4 mask size, H0 x W0 original frame size.

Pipeline: backbone on the B*T frames, audio encoder on the B*T one-second log-mel patches, the
audio-fused pixel decoder, the audio-conditioned transformer decoder with Q queries shared by the T
frames of a clip. Three heads read each query: class-agnostic sounding objectness (2-way, as the
reference's sound head), video-level masks, and an embedding that the learned
:class:`EmbeddingClassifier` compares with the text embeddings of the vocabulary (plus a learned
background embedding). At inference the class distribution of a query is a geometric ensemble of
the learned classifier, CLIP's classification of the query's masked frames when the text encoder
has a CLIP image tower, and (optionally) the clip's sounds named through the audio encoder's label
names, with separate exponents for base and novel classes; objectness and the learned background
probability decide how much the query counts at all.

Training: Hungarian matching per clip on objectness, embedding-class, mask BCE and dice costs
(:class:`HungarianMatcher`), losses of :class:`OVAVSSSetCriterion` on every decoder layer; frames
without labels (``annotated`` False) take no part in mask costs and losses.
"""

import logging
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.structures import ImageList, Instances
from torch import nn

from ..audio_encoder import build_audio_encoder, encode_audio_frames
from ..audio_label_classifier import AudioLabelClassifier, audio_label_names
from ..criterion import OVAVSSSetCriterion
from ..matcher import HungarianMatcher
from ..open_vocab import (
    CLIPVisualClassifier,
    TextClassifierCache,
    build_clip_visual_classifier,
    build_text_classifier_cache,
    geometric_ensemble,
    get_templates,
    objectness_from_logits,
)
from ..open_vocab_head import EmbeddingClassifier
from ..pixel_decoder import build_pixel_decoder
from ..text_encoder import build_text_encoder
from ..transformer_decoder import build_transformer_decoder
from .postprocessing import paint_instances, select_instances, semantic_from_masks
from .vocabulary import (
    VocabularyEntry,
    canonical_name,
    dataset_vocabulary,
    normalize_vocabulary,
    training_vocabulary,
)

__all__ = ["OVAVSS"]

logger = logging.getLogger(__name__)


@META_ARCH_REGISTRY.register()
class OVAVSS(nn.Module):
    """Open-vocabulary audio-visual semantic segmentation model (see the module docstring)."""

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        audio_encoder: nn.Module,
        pixel_decoder: nn.Module,
        transformer_decoder: nn.Module,
        text_encoder,
        text_classifier: TextClassifierCache,
        embedding_classifier: Optional[EmbeddingClassifier],
        clip_visual: Optional[CLIPVisualClassifier],
        audio_labels: Optional[AudioLabelClassifier] = None,
        criterion: OVAVSSSetCriterion,
        train_vocabulary: Dict[str, object],
        test_vocabulary: Sequence[VocabularyEntry] = (),
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        size_divisibility: int = 32,
        ensemble_alpha: float = 0.4,
        ensemble_beta: float = 0.8,
        audio_alpha: float = 0.2,
        audio_beta: float = 0.5,
        objectness_exponent: float = 0.5,
        background_exponent: float = 0.5,
        base_logit_penalty: float = 0.0,
        semantic_from: str = "masks",
        top_k: int = 10,
        score_threshold: float = 0.3,
        mask_threshold: float = 0.5,
        checkpoint_frozen_audio: bool = True,
    ):
        """
        Args:
            backbone: visual backbone; called on ``(B*T, 3, H, W)``.
            audio_encoder: ``(N, 1, L, M) -> (N, C)`` with ``output_dim``.
            pixel_decoder: ``forward_features(features, audio, num_frames)`` (docs/DESIGN.md).
            transformer_decoder: ``forward(multi_scale_features, mask_features, audio,
                num_frames)``.
            text_encoder: ``encode(texts) -> (N, E)``; its ``clip_model`` (or None) is the image
                tower.
            text_classifier: builds and caches the (K, E) text embeddings of a vocabulary.
            embedding_classifier: learned query-to-text classifier; None for objectness + CLIP only.
            clip_visual: CLIP visual mask classifier, or None (no image tower / disabled).
            audio_labels: zero-shot classifier of the clip's sounds through the audio encoder's
                label names, or None.
            criterion: set criterion; its ``weight_dict`` weights the losses.
            train_vocabulary: output of :func:`training_vocabulary`.
            test_vocabulary: default inference vocabulary (see :meth:`set_vocabulary`).
            pixel_mean, pixel_std: per-channel normalisation in INPUT.FORMAT channel order.
            size_divisibility: pad frames to a multiple of this.
            ensemble_alpha, ensemble_beta: CLIP exponent of the geometric ensemble for base / novel
                classes (0: learned classifier only, 1: CLIP only).
            audio_alpha, audio_beta: exponents of the audio-label distribution in the ensemble
                for base / novel classes.
            objectness_exponent: exponent of the objectness probability in the query's foreground
                probability (0: ignore the objectness head, as the reference does).
            background_exponent: exponent of ``1 - p(background)`` of the learned classifier in it.
            base_logit_penalty: subtracted from the learned classifier's logits of training
                (base) classes before its softmax over the vocabulary: calibrated stacking against
                the bias of generalized zero-shot classifiers towards the classes they saw.
            semantic_from: "masks" (Mask2Former semantic inference: class probabilities times mask
                probabilities summed over queries) or "instances" (the reference: paint the kept
                top-k instances, higher scores winning overlaps).
            top_k, score_threshold: (query, class) pairs kept as instances.
            mask_threshold: mask probability of an instance's binary mask.
            checkpoint_frozen_audio: keep a frozen audio encoder's weights in state_dict(); False
                leaves them out (they are rebuilt from MODEL.AUDIO_ENCODER.WEIGHTS / the package).
        """
        super().__init__()
        if semantic_from not in ("masks", "instances"):
            raise ValueError(f"semantic_from must be 'masks' or 'instances', got {semantic_from!r}")
        self.backbone = backbone
        self.audio_encoder = audio_encoder
        self.pixel_decoder = pixel_decoder
        self.transformer_decoder = transformer_decoder
        self.text_encoder = text_encoder  # not an nn.Module: never in checkpoints or optimizers
        self.embedding_classifier = embedding_classifier
        self.clip_visual = clip_visual
        self.audio_labels = audio_labels
        self.criterion = criterion
        self.deep_supervision = any(k.endswith("_0") for k in criterion.weight_dict)
        if embedding_classifier is None and clip_visual is None:
            raise ValueError(
                "OVAVSS needs a class source: the learned embedding classifier "
                "(MODEL.OVAVSS.CLASS_WEIGHT > 0) or a CLIP image tower "
                "(MODEL.OPEN_VOCAB.CLIP_VISUAL_MODE)"
            )
        self.train_keys = list(train_vocabulary["keys"])
        self.train_prompts = [tuple(p) for p in train_vocabulary["prompts"]]
        self.register_buffer(
            "dataset_to_train", train_vocabulary["dataset_to_train"].clone(), persistent=False
        )
        self.text_classifier = text_classifier
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self.size_divisibility = size_divisibility
        self.ensemble_alpha = ensemble_alpha
        self.ensemble_beta = ensemble_beta
        self.audio_alpha = audio_alpha
        self.audio_beta = audio_beta
        self.objectness_exponent = objectness_exponent
        self.background_exponent = background_exponent
        self.base_logit_penalty = base_logit_penalty
        self.semantic_from = semantic_from
        self.top_k = top_k
        self.score_threshold = score_threshold
        self.mask_threshold = mask_threshold
        self.checkpoint_frozen_audio = checkpoint_frozen_audio
        self.register_state_dict_post_hook(_drop_frozen_audio_keys)
        self.register_load_state_dict_pre_hook(_fill_frozen_audio_keys)
        self.class_names: List[str] = []
        self._vocab_prompts: List[Tuple[str, ...]] = []
        self._default_vocabulary = list(test_vocabulary)

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        audio_encoder = build_audio_encoder(cfg)
        audio_dim = audio_encoder.output_dim
        pixel_decoder = build_pixel_decoder(cfg, backbone.output_shape(), audio_dim)
        transformer_decoder = build_transformer_decoder(
            cfg,
            in_channels=pixel_decoder.conv_dim,
            mask_dim=pixel_decoder.mask_dim,
            audio_dim=audio_dim,
        )
        text_encoder = build_text_encoder(cfg)
        ov = cfg.MODEL.OVAVSS
        embedding_classifier = None
        if ov.CLASS_WEIGHT > 0:
            embedding_classifier = EmbeddingClassifier(
                in_dim=cfg.MODEL.TRANSFORMER_DECODER.EMBED_DIM,
                embed_dim=text_encoder.dim,
                hidden_dim=ov.EMBED_HEAD.HIDDEN_DIM,
                temperature=ov.EMBED_HEAD.TEMPERATURE,
                learn_temperature=ov.EMBED_HEAD.LEARN_TEMPERATURE,
            )
        clip_visual = build_clip_visual_classifier(cfg, text_encoder)
        audio_labels = None
        if ov.AUDIO_LABELS.ENABLED:
            names = audio_label_names(audio_encoder)
            if names is None:
                raise ValueError(
                    f"MODEL.OVAVSS.AUDIO_LABELS needs an audio encoder with a tagging head and "
                    f"label names (YAMNet); {cfg.MODEL.AUDIO_ENCODER.NAME} has none"
                )
            label_text = TextClassifierCache(
                text_encoder,
                get_templates(ov.AUDIO_LABELS.TEMPLATES),
                chunk_size=cfg.MODEL.TEXT_ENCODER.CHUNK_SIZE,
            )
            audio_labels = AudioLabelClassifier(
                audio_encoder,
                names,
                label_text,
                top_k=ov.AUDIO_LABELS.TOP_K,
                logit_scale=ov.AUDIO_LABELS.LOGIT_SCALE,
            )
        train_vocabulary = training_vocabulary(cfg.DATASETS.TRAIN, ov.TRAIN_VOCABULARY)

        weight_dict = {
            "loss_objectness": ov.OBJECTNESS_WEIGHT,
            "loss_class": ov.CLASS_WEIGHT,
            "loss_mask": ov.MASK_WEIGHT,
            "loss_dice": ov.DICE_WEIGHT,
        }
        if ov.DEEP_SUPERVISION:
            for i in range(cfg.MODEL.TRANSFORMER_DECODER.DEC_LAYERS):
                weight_dict.update({f"{k}_{i}": v for k, v in list(weight_dict.items())[:4]})
        losses = [
            name
            for name, weight in (
                ("objectness", ov.OBJECTNESS_WEIGHT),
                ("labels", ov.CLASS_WEIGHT),
                ("masks", ov.MASK_WEIGHT + ov.DICE_WEIGHT),
            )
            if weight > 0
        ]
        matcher = HungarianMatcher(
            cost_objectness=ov.OBJECTNESS_WEIGHT,
            cost_class=ov.CLASS_WEIGHT,
            cost_mask=ov.MASK_WEIGHT,
            cost_dice=ov.DICE_WEIGHT,
            num_points=ov.TRAIN_NUM_POINTS,
        )
        criterion = OVAVSSSetCriterion(
            num_classes=len(train_vocabulary["keys"]),
            matcher=matcher,
            weight_dict=weight_dict,
            eos_coef=ov.NO_OBJECT_WEIGHT,
            losses=losses,
            num_points=ov.TRAIN_NUM_POINTS,
            oversample_ratio=ov.OVERSAMPLE_RATIO,
            importance_sample_ratio=ov.IMPORTANCE_SAMPLE_RATIO,
        )
        test_vocabulary = list(cfg.MODEL.OPEN_VOCAB.VOCABULARY)
        if test_vocabulary or cfg.DATASETS.TEST:
            name = cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else ""
            test_vocabulary = dataset_vocabulary(name, cfg.MODEL.OPEN_VOCAB.VOCABULARY)
        ov_test = ov.TEST
        return {
            "backbone": backbone,
            "audio_encoder": audio_encoder,
            "pixel_decoder": pixel_decoder,
            "transformer_decoder": transformer_decoder,
            "text_encoder": text_encoder,
            "text_classifier": build_text_classifier_cache(cfg, text_encoder),
            "embedding_classifier": embedding_classifier,
            "clip_visual": clip_visual,
            "audio_labels": audio_labels,
            "criterion": criterion,
            "train_vocabulary": train_vocabulary,
            "test_vocabulary": test_vocabulary,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "size_divisibility": max(cfg.INPUT.SIZE_DIVISIBILITY, backbone.size_divisibility),
            "ensemble_alpha": cfg.MODEL.OPEN_VOCAB.ENSEMBLE_ALPHA,
            "ensemble_beta": cfg.MODEL.OPEN_VOCAB.ENSEMBLE_BETA,
            "audio_alpha": ov.AUDIO_LABELS.ALPHA,
            "audio_beta": ov.AUDIO_LABELS.BETA,
            "objectness_exponent": (
                ov_test.OBJECTNESS_EXPONENT if cfg.MODEL.OPEN_VOCAB.USE_OBJECTNESS else 0.0
            ),
            "background_exponent": ov_test.BACKGROUND_EXPONENT,
            "base_logit_penalty": ov_test.BASE_LOGIT_PENALTY,
            "semantic_from": ov_test.SEMANTIC_FROM,
            "top_k": cfg.MODEL.OPEN_VOCAB.TOP_K,
            "score_threshold": cfg.MODEL.OPEN_VOCAB.SCORE_THRESHOLD,
            "mask_threshold": cfg.MODEL.OPEN_VOCAB.MASK_THRESHOLD,
            "checkpoint_frozen_audio": ov.CHECKPOINT_FROZEN_AUDIO_ENCODER,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    # -- vocabulary -------------------------------------------------------------------------------

    def set_vocabulary(self, names: Sequence[VocabularyEntry]) -> None:
        """Switch the inference vocabulary; its text embeddings are computed once and cached.

        Args:
            names: K class keys or synonym tuples (see :func:`normalize_vocabulary`). Output channel
                k+1 of ``sem_seg`` and ``pred_classes == k`` then mean ``names[k]``.
        """
        self.class_names, self._vocab_prompts = normalize_vocabulary(names)
        self.text_classifier.get(self._vocab_prompts)  # compute (and cache) now

    def _active_vocabulary(self) -> List[Tuple[str, ...]]:
        if not self._vocab_prompts:
            if not self._default_vocabulary:
                raise RuntimeError(
                    "OVAVSS has no vocabulary: call model.set_vocabulary(names), set "
                    "MODEL.OPEN_VOCAB.VOCABULARY, or register DATASETS.TEST[0] with prompt_names"
                )
            self.set_vocabulary(self._default_vocabulary)
        return self._vocab_prompts

    def _base_mask(self, prompts: Sequence[Tuple[str, ...]]) -> torch.Tensor:
        """``(K,)`` bool: which vocabulary classes were in the training vocabulary (by name)."""
        seen = {canonical_name(k) for k in self.train_keys} | {
            canonical_name(p[0]) for p in self.train_prompts
        }
        return torch.tensor([canonical_name(p[0]) in seen for p in prompts], dtype=torch.bool)

    # -- forward ----------------------------------------------------------------------------------

    def forward(
        self, batched_inputs: List[Dict]
    ) -> Union[Dict[str, torch.Tensor], List[List[Dict]]]:
        """
        Args:
            batched_inputs: B mapper dicts (AVSSDatasetMapper), all with the same T. Used keys:
                ``images`` uint8 ``(T, 3, H, W)``, ``audio`` float ``(T, 1, L, M)``; for training
                ``instances`` (``gt_classes (N,)`` 0-based dataset ids, ``gt_masks (N, T, H, W)``)
                and ``annotated`` bool ``(T,)`` (all frames when absent); for inference ``height``
                and ``width`` (original frame size; the resized size when absent).
        Returns:
            training: dict of weighted losses (``loss_objectness``, ``loss_class``, ``loss_mask``,
            ``loss_dice`` and their ``_<i>`` deep-supervision copies).
            inference: per clip, a list of T dicts with ``sem_seg`` float ``(K+1, H0, W0)``
            (channel 0 background, channel k the k-th vocabulary class) and ``instances``
            (``Instances((H0, W0))`` with ``pred_masks`` bool ``(n, H0, W0)``, ``scores (n,)``,
            ``pred_classes (n,)`` in [0, K)).
        """
        images, audio, num_frames = self._preprocess(batched_inputs)
        outputs = self._decode(images.tensor, audio, num_frames)
        if self.training:
            targets = self._prepare_targets(batched_inputs, images, num_frames)
            return self._losses(outputs, targets)
        return self._inference(outputs, batched_inputs, images, num_frames)

    def _preprocess(self, batched_inputs: List[Dict]) -> Tuple[ImageList, torch.Tensor, int]:
        if not batched_inputs:
            raise ValueError("OVAVSS got an empty batch")
        lengths = {int(x["images"].shape[0]) for x in batched_inputs}
        if len(lengths) != 1:
            raise ValueError(
                f"all clips of a batch must have the same number of frames T, got "
                f"{sorted(lengths)}: use a fixed INPUT.SAMPLING_FRAME_NUM for training and batches "
                "of 1 clip to test clips of different lengths"
            )
        num_frames = lengths.pop()
        frames = [
            (frame.to(self.device).float() - self.pixel_mean) / self.pixel_std
            for x in batched_inputs
            for frame in x["images"]
        ]
        images = ImageList.from_tensors(frames, self.size_divisibility)  # (B*T, 3, H, W)
        audio = torch.stack([x["audio"] for x in batched_inputs]).to(self.device).float()
        return images, audio, num_frames

    def _decode(self, images: torch.Tensor, audio: torch.Tensor, num_frames: int) -> Dict:
        """Backbone, audio encoder, pixel decoder and transformer decoder.

        Args:
            images: ``(B*T, 3, H, W)`` normalised, padded frames.
            audio: ``(B, T, 1, L, M)`` log-mel patches.
        Returns:
            the transformer decoder's outputs (``pred_objectness``, ``pred_embeds``,
            ``pred_masks (B, Q, T, h, w)``, ``aux_outputs``).
        """
        features = self.backbone(images)
        frozen = not any(p.requires_grad for p in self.audio_encoder.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            audio_feats = encode_audio_frames(self.audio_encoder, audio)  # (B, T, C)
        mask_features, multi_scale = self.pixel_decoder.forward_features(
            features, audio_feats, num_frames
        )[:2]
        outputs = self.transformer_decoder(multi_scale, mask_features, audio_feats, num_frames)
        outputs["audio_embeds"] = audio_feats.detach()  # (B, T, C), for the audio-label classifier
        return outputs

    # -- training ---------------------------------------------------------------------------------

    def _prepare_targets(self, batched_inputs, images: ImageList, num_frames: int) -> List[Dict]:
        """Criterion targets: training-vocabulary labels, masks padded to the batch, annotated."""
        pad_h, pad_w = images.tensor.shape[-2:]
        targets = []
        for x in batched_inputs:
            inst = x["instances"]
            classes = inst.gt_classes.to(self.device)
            if classes.numel() and (
                classes.max() >= self.dataset_to_train.numel() or classes.min() < 0
            ):
                raise ValueError(
                    f"clip {x.get('clip_id', '?')}: class ids {classes.tolist()} outside the class "
                    f"list of DATASETS.TRAIN ({self.dataset_to_train.numel()} classes)"
                )
            labels = self.dataset_to_train[classes]
            if (labels < 0).any():
                outside = sorted(set(classes[labels < 0].tolist()))
                raise ValueError(
                    f"clip {x.get('clip_id', '?')}: dataset classes {outside} (0-based) are not in "
                    f"the training vocabulary {self.train_keys}; train on base classes only or set "
                    "MODEL.OVAVSS.TRAIN_VOCABULARY all"
                )
            masks = inst.gt_masks.to(self.device)
            if masks.dim() != 4 or masks.shape[1] != num_frames:
                raise ValueError(
                    f"gt_masks must be (N, T={num_frames}, H, W), got {tuple(masks.shape)}"
                )
            padded = masks.new_zeros((masks.shape[0], num_frames, pad_h, pad_w))
            padded[..., : masks.shape[-2], : masks.shape[-1]] = masks
            annotated = x.get("annotated")
            if annotated is None:
                annotated = torch.ones(num_frames, dtype=torch.bool)
            targets.append(
                {"labels": labels, "masks": padded, "annotated": torch.as_tensor(annotated).bool()}
            )
        return targets

    def _classify_all(self, outputs: Dict, class_embeds: torch.Tensor) -> None:
        """Add ``pred_logits (B, Q, K+1)`` of the embedding classifier to every prediction set."""
        for out in [outputs] + list(outputs.get("aux_outputs", [])):
            out["pred_logits"] = self.embedding_classifier(out["pred_embeds"], class_embeds)

    def _losses(self, outputs: Dict, targets: List[Dict]) -> Dict[str, torch.Tensor]:
        if self.embedding_classifier is not None:
            if not self.train_prompts:
                raise RuntimeError(
                    "OVAVSS has no training vocabulary: DATASETS.TRAIN must name registered "
                    "datasets with stuff_classes (and base_ids)"
                )
            class_embeds = self.text_classifier.get(self.train_prompts).to(self.device)
            self._classify_all(outputs, class_embeds)
        if not self.deep_supervision:
            outputs = {k: v for k, v in outputs.items() if k != "aux_outputs"}
        losses = self.criterion(outputs, targets)
        weights = self.criterion.weight_dict
        return {k: v * weights[k] for k, v in losses.items() if weights.get(k, 0) > 0}

    # -- inference --------------------------------------------------------------------------------

    def _query_scores(
        self,
        outputs: Dict,
        b: int,
        frames: torch.Tensor,
        clip_masks: Optional[torch.Tensor],
    ) -> torch.Tensor:
        """Per-query class scores ``(Q, K)`` of clip ``b`` for the active vocabulary.

        ``score(q, k) = p_fg(q) * p_cls(q, k)``: ``p_cls`` is the geometric ensemble of the learned
        and CLIP class distributions over the K classes (either alone when only one exists), then
        with the audio-label distribution of the clip's sounds when enabled, and
        ``p_fg = p_obj ** objectness_exponent * (1 - p_bg) ** background_exponent``.

        Args:
            outputs: decoder outputs of the batch.
            b: clip index in the batch.
            frames: uint8 ``(T, 3, H, W)`` frames of the clip (mapper ``images``).
            clip_masks: ``(Q, T, H, W)`` mask probabilities for the CLIP classifier, or None.
        """
        prompts = self._active_vocabulary()
        class_embeds = self.text_classifier.get(prompts).to(self.device)  # (K, E)
        num_classes = class_embeds.shape[0]
        num_queries = outputs["pred_masks"].shape[1]
        p_fg = torch.ones(num_queries, device=self.device)
        p_learned = None
        if self.embedding_classifier is not None:
            logits = self.embedding_classifier(outputs["pred_embeds"][b : b + 1], class_embeds)[0]
            class_logits = logits[:, :num_classes].float()  # (Q, K)
            if self.base_logit_penalty:
                is_base = self._base_mask(prompts).to(class_logits.device)
                class_logits = class_logits - self.base_logit_penalty * is_base.float()
            p_learned = class_logits.softmax(-1)  # (Q, K): class given object
            if self.background_exponent:
                p_bg = logits.float().softmax(-1)[:, -1]
                p_fg = p_fg * (1 - p_bg).clamp(min=0) ** self.background_exponent
        if self.objectness_exponent:
            p_obj = objectness_from_logits(outputs["pred_objectness"][b])  # (Q,)
            p_fg = p_fg * p_obj**self.objectness_exponent
        p_clip = None
        if self.clip_visual is not None:
            clip_logits, _ = self.clip_visual(frames, clip_masks, class_embeds)
            p_clip = clip_logits.to(self.device).softmax(-1)  # (Q, K)
        is_novel = ~self._base_mask(prompts)
        if p_learned is None:
            p_cls = p_clip
        elif p_clip is None:
            p_cls = p_learned
        else:
            p_cls = geometric_ensemble(
                p_learned, p_clip, is_novel, alpha=self.ensemble_alpha, beta=self.ensemble_beta
            )
            p_cls = p_cls / p_cls.sum(-1, keepdim=True)
        if self.audio_labels is not None:
            p_audio = self.audio_labels(outputs["audio_embeds"][b : b + 1], prompts)  # (1, K)
            p_cls = geometric_ensemble(
                p_cls, p_audio.expand_as(p_cls), is_novel, self.audio_alpha, self.audio_beta
            )
            p_cls = p_cls / p_cls.sum(-1, keepdim=True)
        return p_fg[:, None] * p_cls

    def _inference(self, outputs, batched_inputs, images: ImageList, num_frames: int):
        pad_h, pad_w = images.tensor.shape[-2:]
        results = []
        for b, x in enumerate(batched_inputs):
            img_h, img_w = images.image_sizes[b * num_frames]
            out_h, out_w = int(x.get("height", img_h)), int(x.get("width", img_w))
            mask_logits = outputs["pred_masks"][b].float()  # (Q, T, h, w)

            def frame_logits(t: int, size: Tuple[int, int]) -> torch.Tensor:
                """(Q, h, w) -> padded input size -> padding removed -> ``size``."""
                m = F.interpolate(
                    mask_logits[:, t][None],
                    size=(pad_h, pad_w),
                    mode="bilinear",
                    align_corners=False,
                )[..., :img_h, :img_w]
                if (img_h, img_w) != tuple(size):
                    m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
                return m[0]

            clip_masks = None
            if self.clip_visual is not None:  # CLIP sees the resized frames: masks at that size
                clip_masks = torch.stack(
                    [frame_logits(t, (img_h, img_w)).sigmoid() for t in range(num_frames)], dim=1
                )  # (Q, T, H, W)
            scores = self._query_scores(outputs, b, x["images"], clip_masks)  # (Q, K)
            del clip_masks
            keep_q, keep_k, keep_s = select_instances(scores, self.top_k, self.score_threshold)
            clip_results = []
            for t in range(num_frames):
                prob = frame_logits(t, (out_h, out_w)).sigmoid()  # (Q, H0, W0)
                instances = Instances((out_h, out_w))
                instances.pred_masks = prob[keep_q] > self.mask_threshold
                instances.scores = keep_s
                instances.pred_classes = keep_k
                if self.semantic_from == "masks":
                    sem = semantic_from_masks(scores, prob)
                else:
                    sem = paint_instances(instances, scores.shape[1])
                clip_results.append({"sem_seg": sem, "instances": instances})
            results.append(clip_results)
        return results


# -- checkpoint hooks: a frozen audio encoder rebuilt from its own weights stays out of them --


def _frozen_audio_prefix(module: OVAVSS) -> Optional[str]:
    if module.checkpoint_frozen_audio:
        return None
    if any(p.requires_grad for p in module.audio_encoder.parameters()):
        return None
    return "audio_encoder."


def _drop_frozen_audio_keys(module: OVAVSS, state_dict, prefix: str, local_metadata) -> None:
    frozen = _frozen_audio_prefix(module)
    if frozen is None:
        return
    for key in [k for k in state_dict if k.startswith(prefix + frozen)]:
        del state_dict[key]


def _fill_frozen_audio_keys(module: OVAVSS, state_dict, prefix: str, *args) -> None:
    """Take the frozen audio encoder's weights from the model when a checkpoint lacks them."""
    frozen = _frozen_audio_prefix(module)
    if frozen is None:
        return
    if any(k.startswith(prefix + frozen) for k in state_dict):
        return
    for key, value in module.audio_encoder.state_dict().items():
        state_dict[prefix + frozen + key] = value
