"""Config keys of version 0.1 that moved in issue 16, kept for one release (0.2) so that a config
or ``KEY VALUE`` override that still uses one fails with a message naming its replacement; remove
this module in 0.3. The table is also in docs/CHANGELOG.md."""

from detectron2.config import CfgNode as CN

__all__ = ["RENAMED_KEYS", "register_renamed_keys"]


_WEIGHTS_NOTE = (
    "the old nested ensemble as flat exponents, with a, b = ENSEMBLE_ALPHA, _BETA and a2, b2 = "
    "AUDIO_LABELS.ALPHA, BETA: NAMES [learned, clip_visual, audio_tags], BASE_WEIGHTS "
    "[(1-a)(1-a2), a(1-a2), a2], NOVEL_WEIGHTS [(1-b)(1-b2), b(1-b2), b2]"
)
# Old key -> new key, or (new key, note) where the replacement is not one-to-one.
RENAMED_KEYS = {
    "MODEL.OPEN_VOCAB.VOCABULARY": "MODEL.OVAVSS.TEST.VOCABULARY",
    "MODEL.OPEN_VOCAB.TOP_K": "MODEL.OVAVSS.TEST.TOP_K",
    "MODEL.OPEN_VOCAB.SCORE_THRESHOLD": "MODEL.OVAVSS.TEST.SCORE_THRESHOLD",
    "MODEL.OPEN_VOCAB.MASK_THRESHOLD": (
        "MODEL.OVAVSS.TEST.MASK_THRESHOLD and MODEL.CLASS_SOURCES.CLIP_VISUAL.MASK_THRESHOLD",
        "the first for instance masks, the second for CLIP's crops",
    ),
    "MODEL.OPEN_VOCAB.USE_OBJECTNESS": (
        "MODEL.OVAVSS.TEST.OBJECTNESS_EXPONENT",
        "USE_OBJECTNESS False is OBJECTNESS_EXPONENT 0.0",
    ),
    "MODEL.OPEN_VOCAB.CLIP_VISUAL_MODE": (
        "MODEL.CLASS_SOURCES.CLIP_VISUAL.MODE",
        'for "none" leave clip_visual out of MODEL.CLASS_SOURCES.NAMES',
    ),
    "MODEL.OPEN_VOCAB.CROP_SIZE": "MODEL.CLASS_SOURCES.CLIP_VISUAL.CROP_SIZE",
    "MODEL.OPEN_VOCAB.CROP_MARGIN": "MODEL.CLASS_SOURCES.CLIP_VISUAL.CROP_MARGIN",
    "MODEL.OPEN_VOCAB.LOGIT_SCALE": "MODEL.CLASS_SOURCES.CLIP_VISUAL.LOGIT_SCALE",
    "MODEL.OPEN_VOCAB.ENSEMBLE_ALPHA": ("MODEL.CLASS_SOURCES.BASE_WEIGHTS", _WEIGHTS_NOTE),
    "MODEL.OPEN_VOCAB.ENSEMBLE_BETA": ("MODEL.CLASS_SOURCES.NOVEL_WEIGHTS", _WEIGHTS_NOTE),
    "MODEL.OVAVSS.AUDIO_LABELS.ENABLED": (
        "MODEL.CLASS_SOURCES.NAMES",
        'list "audio_tags" there, with its weights',
    ),
    "MODEL.OVAVSS.AUDIO_LABELS.ALPHA": ("MODEL.CLASS_SOURCES.BASE_WEIGHTS", _WEIGHTS_NOTE),
    "MODEL.OVAVSS.AUDIO_LABELS.BETA": ("MODEL.CLASS_SOURCES.NOVEL_WEIGHTS", _WEIGHTS_NOTE),
    "MODEL.OVAVSS.AUDIO_LABELS.TOP_K": "MODEL.CLASS_SOURCES.AUDIO_TAGS.TOP_K",
    "MODEL.OVAVSS.AUDIO_LABELS.LOGIT_SCALE": "MODEL.CLASS_SOURCES.AUDIO_TAGS.LOGIT_SCALE",
    "MODEL.OVAVSS.AUDIO_LABELS.TEMPLATES": "MODEL.CLASS_SOURCES.AUDIO_TAGS.TEMPLATES",
    "MODEL.OVAVSS.AUDIO_LABELS.SUPPRESS_TAGS": "MODEL.CLASS_SOURCES.AUDIO_TAGS.SUPPRESS_TAGS",
    "MODEL.OVAVSS.AUDIO_LABELS.SECONDS": "MODEL.CLASS_SOURCES.AUDIO_TAGS.SECONDS",
    "MODEL.OVAVSS.AUDIO_LABELS.SECOND_WEIGHTS": "MODEL.CLASS_SOURCES.AUDIO_TAGS.SECOND_WEIGHTS",
    "MODEL.OVAVSS.EMBED_HEAD.HIDDEN_DIM": "MODEL.CLASS_SOURCES.LEARNED.HIDDEN_DIM",
    "MODEL.OVAVSS.EMBED_HEAD.TEMPERATURE": "MODEL.CLASS_SOURCES.LEARNED.TEMPERATURE",
    "MODEL.OVAVSS.EMBED_HEAD.LEARN_TEMPERATURE": "MODEL.CLASS_SOURCES.LEARNED.LEARN_TEMPERATURE",
    "MODEL.OVAVSS.TEST.BASE_LOGIT_PENALTY": "MODEL.CLASS_SOURCES.LEARNED.BASE_LOGIT_PENALTY",
    # issue 19
    "MODEL.OVAVSS.CHECKPOINT_FROZEN_AUDIO_ENCODER": (
        "MODEL.CHECKPOINT.STORE_FROZEN_WEIGHTS",
        "default False: frozen modules with a weights file are left out and their source recorded",
    ),
}


def register_renamed_keys(cfg: CN) -> None:
    """Register ``RENAMED_KEYS`` with yacs: merging a file or ``KEY VALUE`` pair that sets one
    raises a KeyError naming the new key. A whole node that is gone (``MODEL.OPEN_VOCAB``) is
    registered too, since yacs stops at the first missing level of a YAML file; its note lists the
    new key of each of its leaves."""
    moves, targets = {}, {}
    for old, new in RENAMED_KEYS.items():
        if not cfg.key_is_renamed(old):
            cfg.register_renamed_key(old, *((new,) if isinstance(new, str) else new))
        node, leaf = old.rsplit(".", 1)
        new_key = new if isinstance(new, str) else new[0]
        moves.setdefault(node, []).append(f"{leaf} -> {new_key}")
        for key in new_key.split(" and "):
            targets.setdefault(node, set()).add(key.rsplit(".", 1)[0])
    for node in moves:
        parent, name = node.rsplit(".", 1)
        if name not in _get(cfg, parent) and not cfg.key_is_renamed(node):
            cfg.register_renamed_key(node, ", ".join(sorted(targets[node])), "; ".join(moves[node]))


def _get(cfg: CN, key: str) -> CN:
    for part in key.split("."):
        cfg = cfg[part]
    return cfg
