"""Writing an AVSS-Synth v2 clip, and the robustness variants of the test split.

A variant is a complete AVSBench-format root under ``<root>/variants/test_<name>/`` holding the
test clips with the same frames and labels (hard links to the main build's files, copies where
links are impossible) and other audio: ``clean`` (the sources alone: no noise, no off-screen
sound) or ``snr<X>`` (the clip's own noise components rescaled to X dB).
"""

import os
import shutil
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from ovavss_d2.data.datasets.avsbench_format import (
    FRAME_DIR,
    LABEL_DIR,
    clip_folder,
    make_clip_dirs,
    write_audio,
    write_frame,
    write_label,
)
from ovavss_d2.data.datasets.register_avsbench import SYNTH_VARIANTS_DIR

from .clips_v2 import PEAK, ClipPlanV2, noise_track, render_clip_v2, source_track
from .noise import mix_at_snr
from .objects import NUM_FRAMES

VARIANTS_DIR = SYNTH_VARIANTS_DIR  # where the registration looks for them
DEFAULT_VARIANTS: Dict[str, Optional[float]] = {
    "clean": None,
    "snr20": 20.0,
    "snr10": 10.0,
    "snr5": 5.0,
}


def variant_root(root: os.PathLike, name: str) -> Path:
    """Root folder of the test variant ``name`` (``clean``, ``snr10``, ...)."""
    return Path(root) / VARIANTS_DIR / f"test_{name}"


def parse_variants(text: str) -> Dict[str, Optional[float]]:
    """``"clean,20,10,5"`` -> ``{"clean": None, "snr20": 20.0, ...}`` (empty text: none)."""
    out: Dict[str, Optional[float]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part == "clean":
            out["clean"] = None
            continue
        try:
            value = float(part.removeprefix("snr"))
        except ValueError:
            raise ValueError(f"variant '{part}' is neither 'clean' nor an SNR in dB") from None
        out[f"snr{value:g}"] = value
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_float_wav(path: os.PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono float32 samples as a WAV file whose bytes depend on the samples only.

    libsndfile adds a PEAK chunk holding the time of writing to float WAV files; it is turned off
    (``SFC_SET_ADD_PEAK_CHUNK``), so that two builds write identical stems."""
    import soundfile as sf

    with sf.SoundFile(os.fspath(path), "w", sample_rate, 1, subtype="FLOAT", format="WAV") as f:
        try:  # before any sample is written; soundfile has no public call for it
            sf._snd.sf_command(f._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)
        except AttributeError:  # another soundfile: the stems carry a timestamp
            pass
        f.write(np.asarray(samples, dtype=np.float32))


_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile's sndfile.h


def write_clip_v2(
    plan: ClipPlanV2,
    root: os.PathLike,
    size,
    sample_rate: int,
    class_index: Dict[str, int],
    variants: Optional[Dict[str, Optional[float]]] = None,
    write_stems: bool = False,
) -> Dict[str, float]:
    """Write the clip under ``root`` (and its variants for a test clip).

    Writes ``<subset>/<uid>/{frames/<t>.jpg, labels_rgb/<t>.png, audio.wav}``; with
    ``write_stems`` also ``stems/<uid>/{sources,noise}.wav`` (float32: the two parts of
    ``audio.wav`` after peak limiting). Returns the SNR (dB) written per audio version.
    """
    clip_dir = make_clip_dirs(clip_folder(root, plan.subset, plan.uid))
    frames, labels = render_clip_v2(plan, size, class_index)
    for t in range(NUM_FRAMES):
        write_frame(clip_dir, t, frames[t], quality=plan.visual.jpeg_quality)
    num_classes = max(class_index.values()) + 1
    for t in plan.annotated_frames():
        write_label(clip_dir, t, labels[t], num_classes)

    signal = source_track(plan, sample_rate)
    noise = noise_track(plan.audio, sample_rate)
    mix, sig, noi = mix_at_snr(signal, noise, plan.audio.snr_db, PEAK)
    write_audio(clip_dir, mix, sample_rate)
    if write_stems:
        stems = Path(root) / "stems" / plan.uid
        stems.mkdir(parents=True, exist_ok=True)
        write_float_wav(stems / "sources.wav", sig, sample_rate)
        write_float_wav(stems / "noise.wav", noi, sample_rate)
    written = {"": plan.audio.snr_db}
    for name, snr in (variants or {}).items():
        vdir = clip_folder(variant_root(root, name), plan.subset, plan.uid)
        for sub in (FRAME_DIR, LABEL_DIR):
            for f in sorted((clip_dir / sub).iterdir()):
                _link_or_copy(f, vdir / sub / f.name)
        vmix, _, _ = mix_at_snr(signal, noise, snr, PEAK)
        write_audio(vdir, vmix, sample_rate)
        written[name] = snr
    return written
