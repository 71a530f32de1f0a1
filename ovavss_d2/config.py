"""Config keys of ovavss_d2: ``add_ovavss_config(cfg)`` adds every key with its default."""
from detectron2.config import CfgNode as CN


def add_ovavss_config(cfg: CN) -> None:
    """Add all ovavss_d2 keys (input, audio, datasets, models, open vocabulary, solver) to ``cfg``."""
    _add_input_config(cfg)
    _add_dataset_config(cfg)
    _add_audio_encoder_config(cfg)
    _add_ovavss_model_config(cfg)
    _add_decoder_config(cfg)
    _add_open_vocab_config(cfg)
    _add_tpavi_config(cfg)
    _add_solver_config(cfg)
    _add_test_config(cfg)


def _add_input_config(cfg: CN) -> None:
    """Clip sampling, augmentation and audio front-end keys (``INPUT.*``)."""
    # Mapper used by train_net.py: "avss_semantic" (AVSSDatasetMapper).
    cfg.INPUT.DATASET_MAPPER_NAME = "avss_semantic"
    # Frames sampled per clip for training (T). Test always uses every frame of a clip.
    cfg.INPUT.SAMPLING_FRAME_NUM = 5
    # Pad/crop size divisibility applied by the model when batching (0: none).
    cfg.INPUT.SIZE_DIVISIBILITY = 32

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


def _add_dataset_config(cfg: CN) -> None:
    """Dataset-level keys (``DATASETS.*``)."""
    # Class list and base/novel split files (package data names or paths) used when registering
    # AVSBench-semantic; see ovavss_d2/data/classes/.
    cfg.DATASETS.CLASS_LIST = "avsbench_semantic.txt"
    cfg.DATASETS.OV_SPLIT = "avsbench_ov_split.json"


# --- Sections below are owned by the model components; each key carries a comment. ---------------


def _add_audio_encoder_config(cfg: CN) -> None:
    """Audio encoder keys (``MODEL.AUDIO_ENCODER.*``)."""
    cfg.MODEL.AUDIO_ENCODER = CN()
    # Name in AUDIO_ENCODER_REGISTRY.
    cfg.MODEL.AUDIO_ENCODER.NAME = "VGGish"
    # Checkpoint path (VGGish: torchvggish layout). Empty: the encoder's packaged weights or random.
    cfg.MODEL.AUDIO_ENCODER.WEIGHTS = ""
    # Keep the audio encoder frozen (the reference trains with a frozen VGGish).
    cfg.MODEL.AUDIO_ENCODER.FREEZE = True


def _add_ovavss_model_config(cfg: CN) -> None:
    """OV-AVSS meta-architecture keys (``MODEL.OVAVSS.*``)."""
    cfg.MODEL.OVAVSS = CN()


def _add_decoder_config(cfg: CN) -> None:
    """Pixel-decoder and transformer-decoder keys (``MODEL.PIXEL_DECODER.*``, ``MODEL.TRANSFORMER_DECODER.*``)."""
    cfg.MODEL.PIXEL_DECODER = CN()
    cfg.MODEL.TRANSFORMER_DECODER = CN()


def _add_open_vocab_config(cfg: CN) -> None:
    """Open-vocabulary classification keys (``MODEL.OPEN_VOCAB.*``, ``MODEL.TEXT_ENCODER.*``)."""
    cfg.MODEL.OPEN_VOCAB = CN()
    cfg.MODEL.TEXT_ENCODER = CN()


def _add_tpavi_config(cfg: CN) -> None:
    """TPAVI baseline keys (``MODEL.TPAVI.*``)."""
    cfg.MODEL.TPAVI = CN()


def _add_solver_config(cfg: CN) -> None:
    """Optimizer keys beyond Detectron2's (``SOLVER.*``)."""
    # "ADAMW" or "SGD".
    cfg.SOLVER.OPTIMIZER = "ADAMW"
    # Learning-rate multiplier of the visual backbone.
    cfg.SOLVER.BACKBONE_MULTIPLIER = 0.1


def _add_test_config(cfg: CN) -> None:
    """Evaluation keys (``TEST.*``)."""
