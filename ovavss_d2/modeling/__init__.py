"""Model components; importing this module registers them with Detectron2's registries."""
from . import backbone, audio_encoder, text_encoder  # noqa: F401  registration
from . import pixel_decoder, transformer_decoder  # noqa: F401  registers the decoders
from . import meta_arch  # noqa: F401  registers OVAVSS (and imports the encoders it builds)
