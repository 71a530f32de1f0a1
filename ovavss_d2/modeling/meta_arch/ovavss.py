"""OV-AVSS, open-vocabulary audio-visual semantic segmentation (META_ARCHITECTURE ``OVAVSS``).

Shape letters: B clips, T frames per clip, Q queries, K classes of a vocabulary (+1 background or
no-object where written K+1), E text-embedding size, C audio-embedding size, L x M log-mel patch,
H x W (padded) image size, h x w = H/4 x W/4 mask size, H0 x W0 original frame size.

Pipeline: backbone on the B*T frames, audio encoder on the B*T one-second log-mel patches, the
audio-fused pixel decoder, the audio-conditioned transformer decoder with Q queries shared by the T
frames of a clip. Three heads read each query: class-agnostic sounding objectness (2-way, as the
reference's sound head), video-level masks, and an embedding that the learned
:class:`EmbeddingClassifier` compares with the text embeddings of the vocabulary (plus a learned
background embedding). At inference each configured class-evidence source
(``modeling/class_sources``, ``MODEL.CLASS_SOURCES``) names the queries of a clip; their weighted
geometric ensemble, with separate exponents for base and novel classes, is the class distribution,
and objectness and the learned background probability decide how much the query counts at all
(:meth:`OVAVSS.class_evidence`, then ``meta_arch/inference.py``). With
``MODEL.OVAVSS.PER_FRAME_OBJECTNESS`` a fourth head says whether each query sounds in each frame
(from that frame's audio); the scores become per frame, ``p_fg(q) * p_cls(q, k) * p_sound(q, t)``.

Training: Hungarian matching per clip on objectness, embedding-class, mask BCE and dice costs
(:class:`HungarianMatcher`), losses of :class:`OVAVSSSetCriterion` on every decoder layer; frames
without labels (``annotated`` False) take no part in mask costs and losses.
"""

import logging
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.structures import ImageList
from torch import nn

from ...data.vocabulary import (
    VocabularyLike,
    canonical_name,
    dataset_vocabulary,
    parse_vocabulary,
    training_vocabulary,
)
from ..audio_encoder import build_audio_encoder, encode_audio_frames
from ..class_sources import (
    ClassSource,
    EmbeddingClassifier,
    SourceWeights,
    build_class_sources,
    build_embedding_classifier,
    combine_evidence,
    foreground_probability,
    objectness_from_logits,
)
from ..class_sources.av_agreement import AVAgreement
from ..criterion import OVAVSSSetCriterion
from ..pixel_decoder import build_pixel_decoder
from ..text_encoder import TextClassifierCache, build_text_classifier_cache, build_text_encoder
from ..transformer_decoder import build_transformer_decoder
from .batching import batch_clips
from .inference import clip_queries, clip_results
from .training import build_criterion, prepare_targets, weighted_losses

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
        class_sources: Dict[str, ClassSource],
        source_weights: Dict[str, SourceWeights],
        base_bias: float = 0.0,
        criterion: OVAVSSSetCriterion,
        train_vocabulary: Dict[str, object],
        test_vocabulary: VocabularyLike = (),
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        size_divisibility: int = 32,
        objectness_exponent: float = 0.5,
        background_exponent: float = 0.5,
        frame_objectness_exponent: float = 1.0,
        av_agreement: Optional[AVAgreement] = None,
        semantic_from: str = "masks",
        top_k: int = 10,
        score_threshold: float = 0.3,
        mask_threshold: float = 0.5,
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
            embedding_classifier: learned query-to-text classifier (trained, checkpointed as
                ``embedding_classifier.*``); None for objectness + other class sources only.
            class_sources: name -> class-evidence source, in ensemble order
                (:func:`build_class_sources`); not modules: nothing of theirs is checkpointed.
            source_weights: name -> ``(base, novel)`` exponents of each source.
            base_bias: subtracted from the ensemble's log-scores of base classes (calibrated
                stacking; see :func:`combine_evidence`).
            criterion: set criterion; its ``weight_dict`` weights the losses.
            train_vocabulary: output of :func:`training_vocabulary`.
            test_vocabulary: default inference vocabulary (see :meth:`set_vocabulary`).
            pixel_mean, pixel_std: per-channel normalisation in INPUT.FORMAT channel order.
            size_divisibility: pad frames to a multiple of this.
            objectness_exponent: exponent of the objectness probability in the query's foreground
                probability (0: ignore the objectness head, as the reference does).
            background_exponent: exponent of ``1 - p(background)`` of each source that models
                background (the learned classifier) in it.
            frame_objectness_exponent: exponent of the per-frame sounding probability in the
                scores of each frame (decoders with ``pred_frame_objectness``; 0: ignore it).
            av_agreement: a training-free per-frame sounding prior multiplied into the scores of
                each frame (:class:`AVAgreement`), or None.
            semantic_from: "masks" (Mask2Former semantic inference: class probabilities times mask
                probabilities summed over queries) or "instances" (the reference: paint the kept
                top-k instances, higher scores winning overlaps).
            top_k, score_threshold: (query, class) pairs kept as instances.
            mask_threshold: mask probability of an instance's binary mask.
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
        if not class_sources or set(class_sources) - set(source_weights):
            raise ValueError(
                f"OVAVSS needs class sources, each with weights: got sources "
                f"{sorted(class_sources)}, weights for {sorted(source_weights)}"
            )
        self.class_sources = dict(class_sources)
        self.source_weights = dict(source_weights)
        self.base_bias = float(base_bias)
        self.criterion = criterion
        self.deep_supervision = any(k.endswith("_0") for k in criterion.weight_dict)
        self.train_keys = list(train_vocabulary["keys"])
        self.train_prompts = [tuple(p) for p in train_vocabulary["prompts"]]
        # On the host: targets are checked and mapped there, before their copy to the device.
        self.dataset_to_train = train_vocabulary["dataset_to_train"].clone()
        self.text_classifier = text_classifier
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self.size_divisibility = size_divisibility
        self.objectness_exponent = objectness_exponent
        self.background_exponent = background_exponent
        self.frame_objectness_exponent = frame_objectness_exponent
        self.av_agreement = av_agreement
        self.semantic_from = semantic_from
        self.top_k = top_k
        self.score_threshold = score_threshold
        self.mask_threshold = mask_threshold
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
        embedding_classifier = build_embedding_classifier(cfg, text_encoder.dim)
        text_classifier = build_text_classifier_cache(cfg, text_encoder)
        class_sources, source_weights = build_class_sources(
            cfg,
            {
                "text_encoder": text_encoder,
                "audio_encoder": audio_encoder,
                "text_classifier": text_classifier,
                "embedding_classifier": embedding_classifier,
            },
        )
        train_vocabulary = training_vocabulary(
            cfg.DATASETS.TRAIN, ov.TRAIN_VOCABULARY, ov.TRAIN_POOL_NAMES
        )

        criterion = build_criterion(cfg, num_classes=len(train_vocabulary["keys"]))
        av_agreement = None
        agree = ov.TEST.AV_AGREEMENT
        if agree.ENABLED:
            missing = {"image_tags", "audio_tags"} - set(class_sources)
            if missing:
                raise ValueError(
                    "MODEL.OVAVSS.TEST.AV_AGREEMENT.ENABLED needs the class sources "
                    f"{sorted(missing)} in MODEL.CLASS_SOURCES.NAMES"
                )
            av_agreement = AVAgreement(
                class_sources["image_tags"],
                class_sources["audio_tags"],
                scale=agree.SCALE,
                center=agree.CENTER,
                exponent=agree.EXPONENT,
            )
        ov_test = ov.TEST
        test_vocabulary = list(ov_test.VOCABULARY)
        if test_vocabulary or cfg.DATASETS.TEST:
            name = cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else ""
            test_vocabulary = dataset_vocabulary(name, ov_test.VOCABULARY)
        return {
            "backbone": backbone,
            "audio_encoder": audio_encoder,
            "pixel_decoder": pixel_decoder,
            "transformer_decoder": transformer_decoder,
            "text_encoder": text_encoder,
            "text_classifier": text_classifier,
            "embedding_classifier": embedding_classifier,
            "class_sources": class_sources,
            "source_weights": source_weights,
            "base_bias": cfg.MODEL.CLASS_SOURCES.BASE_BIAS,
            "criterion": criterion,
            "train_vocabulary": train_vocabulary,
            "test_vocabulary": test_vocabulary,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "size_divisibility": max(cfg.INPUT.SIZE_DIVISIBILITY, backbone.size_divisibility),
            "objectness_exponent": ov_test.OBJECTNESS_EXPONENT,
            "background_exponent": ov_test.BACKGROUND_EXPONENT,
            "frame_objectness_exponent": ov_test.FRAME_OBJECTNESS_EXPONENT,
            "av_agreement": av_agreement,
            "semantic_from": ov_test.SEMANTIC_FROM,
            "top_k": ov_test.TOP_K,
            "score_threshold": ov_test.SCORE_THRESHOLD,
            "mask_threshold": ov_test.MASK_THRESHOLD,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def clip_visual(self):
        """The ``clip_visual`` source's ``CLIPVisualClassifier``, or None (tools/benchmark.py)."""
        return getattr(self.class_sources.get("clip_visual"), "classifier", None)

    # -- vocabulary -------------------------------------------------------------------------------

    def set_vocabulary(self, names: VocabularyLike) -> None:
        """Switch the inference vocabulary; its text embeddings are computed once and cached.

        Args:
            names: K classes, anything :func:`~ovavss_d2.data.vocabulary.parse_vocabulary` reads.
                Output channel k+1 of ``sem_seg`` and ``pred_classes == k`` then mean class k.
        """
        vocabulary = parse_vocabulary(names)
        self.class_names, self._vocab_prompts = vocabulary.names, vocabulary.prompts
        self.text_classifier.get(self._vocab_prompts)  # compute (and cache) now

    def _active_vocabulary(self) -> List[Tuple[str, ...]]:
        if not self._vocab_prompts:
            if not self._default_vocabulary:
                raise RuntimeError(
                    "OVAVSS has no vocabulary: call model.set_vocabulary(names), set "
                    "MODEL.OVAVSS.TEST.VOCABULARY, or register DATASETS.TEST[0] with prompt_names"
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
            ``loss_dice``, with per-frame objectness ``loss_frame_objectness``, and their ``_<i>``
            deep-supervision copies).
            inference: per clip, a list of T dicts with ``sem_seg`` float ``(K+1, H0, W0)``
            (channel 0 background, channel k the k-th vocabulary class) and ``instances``
            (``Instances((H0, W0))`` with ``pred_masks`` bool ``(n, H0, W0)``, ``scores (n,)``,
            ``pred_classes (n,)`` in [0, K)).
        """
        images, audio, num_frames = self._preprocess(batched_inputs)
        outputs = self._decode(images.tensor, audio, num_frames)
        if self.training:
            targets = prepare_targets(
                batched_inputs,
                self.dataset_to_train,
                self.train_keys,
                tuple(images.tensor.shape[-2:]),
                num_frames,
                self.device,
            )
            return self._losses(outputs, targets)
        records = self._clip_evidence(outputs, batched_inputs, images, num_frames)
        return [self.postprocess(record) for record in records]

    def _preprocess(self, batched_inputs: List[Dict]) -> Tuple[ImageList, torch.Tensor, int]:
        """Frames ``(B*T, 3, H, W)`` and audio ``(B, T, 1, L, M)`` on the device, and T
        (:func:`batch_clips`: one copy per batch)."""
        return batch_clips(batched_inputs, self.pixel_mean, self.pixel_std, self.size_divisibility)

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

    def _losses(self, outputs: Dict, targets: List[Dict]) -> Dict[str, torch.Tensor]:
        # float32 even under AMP (ovavss_d2/engine/amp.py): the scaled cosine logits (x 100 at
        # most), the cached text embeddings, the matching costs and the losses.
        with torch.autocast(self.device.type, enabled=False):
            if self.embedding_classifier is not None:
                if not self.train_prompts:
                    raise RuntimeError(
                        "OVAVSS has no training vocabulary: DATASETS.TRAIN must name registered "
                        "datasets with stuff_classes (and base_ids)"
                    )
                class_embeds = self.text_classifier.get(self.train_prompts).to(self.device)
                for out in [outputs] + list(outputs.get("aux_outputs", [])):
                    out["pred_logits"] = self.embedding_classifier(  # (B, Q, K+1)
                        out["pred_embeds"].float(), class_embeds
                    )
            return weighted_losses(self.criterion, outputs, targets, self.deep_supervision)

    # -- inference --------------------------------------------------------------------------------

    @torch.no_grad()
    def class_evidence(self, batched_inputs: List[Dict]) -> List[Dict]:
        """What every class source says about each clip's queries, before the ensemble.

        ``[self.postprocess(r) for r in self.class_evidence(x)]`` is ``self(x)`` in eval mode, so
        cached records let the ensemble weights be tuned offline (``source_weights``).

        Returns:
            per clip a dict: ``p_fg (Q,)`` foreground probability, with a per-frame sounding head
            ``p_frame (Q, T)`` the probability that the query sounds in each frame, with
            ``av_agreement`` its prior ``p_agree (Q, T)``, ``evidence``
            (source name -> ``ClassEvidence``), ``is_base`` bool ``(K,)``,
            ``mask_logits (Q, T, h, w)``,
            ``padded_size`` ``(Hp, Wp)`` of the batch, ``image_size`` ``(H, W)`` the resized frame
            and ``output_size`` ``(H0, W0)`` the original frame.
        """
        images, audio, num_frames = self._preprocess(batched_inputs)
        outputs = self._decode(images.tensor, audio, num_frames)
        return self._clip_evidence(outputs, batched_inputs, images, num_frames)

    def _clip_evidence(self, outputs, batched_inputs, images: ImageList, num_frames: int):
        prompts = self._active_vocabulary()
        class_embeds = self.text_classifier.get(prompts).to(self.device)  # (K, E)
        is_base = self._base_mask(prompts)
        padded_size = tuple(images.tensor.shape[-2:])
        records = []
        for b, x in enumerate(batched_inputs):
            image_size = tuple(images.image_sizes[b * num_frames])
            clip = clip_queries(
                outputs, b, x["images"], prompts, class_embeds, is_base, padded_size, image_size
            )
            evidence = {name: source(clip) for name, source in self.class_sources.items()}
            p_obj = objectness_from_logits(clip.pred_objectness)  # (Q,)
            p_fg = foreground_probability(
                p_obj, evidence, self.objectness_exponent, self.background_exponent, len(p_obj)
            )
            out_size = (int(x.get("height", image_size[0])), int(x.get("width", image_size[1])))
            record = {
                "p_fg": p_fg.to(self.device),
                "evidence": evidence,
                "is_base": is_base,
                "mask_logits": outputs["pred_masks"][b].float(),  # (Q, T, h, w)
                "padded_size": padded_size,
                "image_size": image_size,
                "output_size": out_size,
            }
            if "pred_frame_objectness" in outputs:
                record["p_frame"] = outputs["pred_frame_objectness"][b].float().sigmoid()  # (Q, T)
            if self.av_agreement is not None:
                record["p_agree"] = self.av_agreement(clip).to(self.device)  # (Q, T)
            records.append(record)
        return records

    def query_scores(self, record: Dict) -> torch.Tensor:
        """``(Q, K)`` (or per frame ``(Q, T, K)``) class scores ``p_fg * p_cls`` of a
        :meth:`class_evidence` record under the model's ``source_weights``; per frame
        ``p_fg * p_cls * p_frame ** frame_objectness_exponent * p_agree`` when the record has
        ``p_frame`` and / or ``p_agree`` (each factor 1 where absent)."""
        _, p_cls = combine_evidence(
            record["evidence"], self.source_weights, record["is_base"], self.base_bias
        )
        p_fg = record["p_fg"].to(p_cls.device)
        scores = p_fg.view(-1, *([1] * (p_cls.dim() - 1))) * p_cls
        factors = []  # (Q, T) each
        p_frame = record.get("p_frame")
        if p_frame is not None and self.frame_objectness_exponent:
            factors.append(p_frame**self.frame_objectness_exponent)
        if record.get("p_agree") is not None:
            factors.append(record["p_agree"])
        if not factors:
            return scores
        if scores.dim() == 2:
            scores = scores[:, None]  # (Q, 1, K): one class distribution for every frame
        for factor in factors:
            scores = scores * factor.to(scores)[..., None]
        return scores  # (Q, T, K)

    def postprocess(self, record: Dict, scores: Optional[torch.Tensor] = None) -> List[Dict]:
        """Per-frame ``sem_seg`` and ``instances`` of one :meth:`class_evidence` record (with
        ``scores`` in place of :meth:`query_scores`, e.g. a baseline's)."""
        return clip_results(
            self.query_scores(record) if scores is None else scores,
            record["mask_logits"],
            padded_size=record["padded_size"],
            image_size=record["image_size"],
            output_size=record["output_size"],
            top_k=self.top_k,
            score_threshold=self.score_threshold,
            mask_threshold=self.mask_threshold,
            semantic_from=self.semantic_from,
        )
