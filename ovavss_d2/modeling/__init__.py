"""Model components; importing this module registers them with Detectron2's registries."""

from . import meta_arch  # noqa: F401  registers OVAVSS (and imports the encoders it builds)
from . import (  # noqa: F401  registration; noqa: F401  registers the decoders
    audio_encoder,
    backbone,
    pixel_decoder,
    text_encoder,
    transformer_decoder,
)
