"""Zero-shot naming of the sounds of a clip through the audio encoder's own label names.

Shape letters: B clips, T frames, C audio-embedding size, J labels of the audio classifier
(AudioSet: 521), K classes of the vocabulary, E text-embedding size.

An audio encoder trained for audio tagging (YAMNet: 521 AudioSet classes) says *which sounds* play
in each second, with names ("Cattle, bovinae", "Violin, fiddle", "Fire engine, fire truck
(siren)"). Embedding those names with the text encoder puts each second of audio into the
text-embedding space: ``u_t = normalise(sum_j p_t(j) * text(label_j))`` over the top labels of
the second. Its cosine similarity with the vocabulary's text embeddings gives a class distribution
of the clip's sounds that covers classes never seen in training, like CLIP's image tower does for
pixels. OVAVSS uses it as a third member of its geometric ensemble (base / novel exponents).
"""

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AudioLabelClassifier", "audio_label_names"]


def audio_label_names(audio_encoder: nn.Module) -> Optional[List[str]]:
    """The label names of an audio encoder's tagging head, or None when it has none.

    An encoder qualifies with a ``classifier`` module mapping its embeddings ``(N, C)`` to label
    logits ``(N, J)`` and J names: a ``class_names`` attribute, or YAMNet's AudioSet names.
    """
    if not isinstance(getattr(audio_encoder, "classifier", None), nn.Module):
        return None
    names = getattr(audio_encoder, "class_names", None)
    if names is None:
        from .audio_encoder.yamnet import YAMNet, yamnet_class_names

        if isinstance(audio_encoder, YAMNet):
            names = yamnet_class_names()
    return list(names) if names is not None else None


class AudioLabelClassifier:
    """Class distribution of a clip's sounds over any vocabulary (inference only, no weights).

    Example::

        labels = AudioLabelClassifier(yamnet, yamnet_class_names(), text_cache)
        p_audio = labels(audio_embeds, [("dog",), ("cello",)])  # (B, K)
    """

    def __init__(
        self,
        audio_encoder: nn.Module,
        label_names: Sequence[str],
        text_classifier,
        *,
        top_k: int = 5,
        logit_scale: float = 30.0,
    ):
        """
        Args:
            audio_encoder: the model's audio encoder; its ``classifier`` maps embeddings to the J
                label logits (sigmoid scores, multi-label as AudioSet).
            label_names: J label names.
            text_classifier: a ``TextClassifierCache`` (the same text encoder and templates are
                used for the label names and for the vocabulary).
            top_k: labels of each second that form its text-space embedding (0: all, weighted).
            logit_scale: softmax temperature: logits = logit_scale * cosine.
        """
        self.audio_encoder = audio_encoder
        self.label_names = [(n,) for n in label_names]
        self.text_classifier = text_classifier
        self.top_k = top_k
        self.logit_scale = logit_scale

    @torch.no_grad()
    def logits(
        self, audio_embeds: torch.Tensor, vocabulary: Sequence[Tuple[str, ...]]
    ) -> torch.Tensor:
        """
        Args:
            audio_embeds: ``(B, T, C)`` embeddings of the audio encoder, one per frame's second.
            vocabulary: K synonym tuples.
        Returns:
            ``(B, T, K)`` logits of each second's sounds over the vocabulary.
        """
        labels = self.text_classifier.get(self.label_names).to(audio_embeds.device)  # (J, E)
        classes = self.text_classifier.get(vocabulary).to(audio_embeds.device)  # (K, E)
        head = self.audio_encoder.classifier
        scores = head(audio_embeds.to(next(head.parameters()).dtype)).float().sigmoid()
        if self.top_k and self.top_k < scores.shape[-1]:
            top = scores.topk(self.top_k, dim=-1)
            scores = torch.zeros_like(scores).scatter_(-1, top.indices, top.values)
        sound = F.normalize(scores @ labels, dim=-1)  # (B, T, J) x (J, E) -> (B, T, E)
        return self.logit_scale * sound @ classes.t()  # (B, T, K)

    def __call__(
        self, audio_embeds: torch.Tensor, vocabulary: Sequence[Tuple[str, ...]]
    ) -> torch.Tensor:
        """``(B, K)`` class distribution of each clip's sounds (logits averaged over seconds)."""
        return self.logits(audio_embeds, vocabulary).mean(1).softmax(-1)
