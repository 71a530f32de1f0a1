#!/usr/bin/env python
"""Speed, memory and FLOPs of an OV-AVSS configuration on synthetic clips (no dataset needed).

Measures, for clips of T frames at S x S pixels:

- inference: milliseconds per clip and frames per second (``model.eval()``, no gradients);
- training: seconds per iteration (forward, backward, AdamW step with full-model clipping);
- peak memory: CUDA ``max_memory_allocated`` on a GPU, peak resident set size of the process on
  the CPU (which includes the Python runtime, the weights and the text encoder);
- FLOPs per frame with fvcore (one fused multiply-add counts as one flop, fvcore's convention) of
  the segmentation network (backbone, audio encoder, pixel and transformer decoders; audio and
  decoder costs divided by T) and, with a CLIP image tower, of one CLIP crop; achieved GFLOP/s =
  fvcore GFLOPs of the timed work / seconds.

CLIP weights are not needed: when ``MODEL.TEXT_ENCODER.CLIP_MODEL`` is a model name that is not in
the download cache, a randomly initialised CLIP of the same architecture is used (same FLOPs and
speed); its folder in the system temp dir is removed at exit. Example (the R50 configuration at
224 x 224, T = 5, CPU, CLIP by mask pooling: the config's reference ``crop`` mode encodes 500
crops per clip, about 45 min per run on a 2-core CPU)::

    python tools/benchmark.py --config-file configs/avsbench_ov/ovavss_R50.yaml --size 224 \\
        --frames 5 --device cpu --output output/benchmark/R50_cpu_maskpool.json \\
        MODEL.CLASS_SOURCES.CLIP_VISUAL.MODE mask_pool

``--deform-attn-memory`` instead compares one training iteration (forward and backward) of the
pixel decoder alone, on random backbone features of T frames at ``--size`` x ``--width`` pixels,
as before issue 19 (plain-autograd sampling that keeps every level's samples for backward), with
the lean sampling (samples recomputed in backward), and with the lean sampling and the encoder
layers recomputed in backward (``MODEL.PIXEL_DECODER.RECOMPUTE_ENCODER_LAYERS True``). Each
variant runs ``--repeats`` times, alternately, each time in a fresh process; the table gives the
medians of the peak memory, of the activation memory (peak minus the memory held before the
iteration) and of the wall and process CPU seconds per iteration::

    OMP_NUM_THREADS=1 python tools/benchmark.py --config-file configs/avsbench_ov/ovavss_R50.yaml \\
        --deform-attn-memory --size 480 --width 854 --frames 5 --threads 1 --repeats 3 \\
        --train-iters 1 --output output/benchmark/deform_attn_480x854.json
"""

import argparse
import atexit
import json
import logging
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

import torch
from detectron2.modeling import build_model
from detectron2.structures import Instances
from detectron2.utils.logger import setup_logger
from torch import nn

from ovavss_d2 import get_cfg
from ovavss_d2.data.vocabulary import dataset_vocabulary
from ovavss_d2.utils.analysis import count_flops
from ovavss_d2.utils.preflight import ints_for_float_keys

logger = logging.getLogger("ovavss_d2.benchmark")

# clip.model.CLIP arguments of the named CLIP models this project configures.
CLIP_ARCHS = {
    "ViT-B/16": (512, 224, 12, 768, 16, 77, 49408, 512, 8, 12),
    "ViT-B/32": (512, 224, 12, 768, 32, 77, 49408, 512, 8, 12),
    "ViT-L/14": (768, 224, 24, 1024, 14, 77, 49408, 768, 12, 12),
    "ViT-L/14@336px": (768, 336, 24, 1024, 14, 77, 49408, 768, 12, 12),
}


def random_clip_checkpoint(name: str, folder: str) -> str:
    """Save a randomly initialised CLIP with the architecture of ``name``; return its path."""
    from clip.model import CLIP

    path = os.path.join(folder, name.replace("/", "-").replace("@", "-") + "-random.pt")
    if not os.path.isfile(path):
        torch.manual_seed(0)
        torch.save(CLIP(*CLIP_ARCHS[name]).state_dict(), path)
    return path


def synthetic_clip(frames: int, size: int, seed: int, classes=(0, 1), width: int = 0) -> Dict:
    """A mapper-style clip of ``size x width`` frames (``width`` 0: square): random frames and
    audio, two rectangles as sounding objects of the given 0-based dataset classes."""
    g = torch.Generator().manual_seed(seed)
    width = width or size
    masks = torch.zeros(2, frames, size, width, dtype=torch.bool)
    masks[0, :, size // 8 : size // 2, width // 8 : width // 2] = True
    masks[1, :, size // 2 :, width // 3 :] = True
    inst = Instances((size, width))
    inst.gt_classes = torch.tensor(list(classes))
    inst.gt_masks = masks
    return {
        "images": torch.randint(0, 256, (frames, 3, size, width), generator=g, dtype=torch.uint8),
        "audio": torch.randn(frames, 1, 96, 64, generator=g),
        "instances": inst,
        "annotated": torch.ones(frames, dtype=torch.bool),
        "height": size,
        "width": width,
    }


class SegmentationNetwork(nn.Module):
    """Backbone + audio encoder + pixel decoder + transformer decoder of an OVAVSS, on tensors."""

    def __init__(self, model: nn.Module, frames: int):
        super().__init__()
        self.model = model
        self.frames = frames

    def forward(self, images: torch.Tensor, audio: torch.Tensor):
        out = self.model._decode(images, audio, self.frames)
        return out["pred_masks"], out["pred_embeds"], out["pred_objectness"]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CPU_SECONDS: Dict[str, float] = {}  # process CPU seconds per run of each timed measurement


def timed(fn, device: torch.device, warmup: int, iters: int, name: str = "") -> float:
    """Mean wall-clock seconds of ``fn()`` over ``iters`` runs after ``warmup`` runs; the mean
    process CPU time (all threads) goes to ``CPU_SECONDS[name]``: with one thread it is what the
    run would take on an idle core even when other jobs share the machine."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(iters):
        fn()
    synchronize(device)
    if name:
        CPU_SECONDS[name] = (time.process_time() - cpu) / iters
    return (time.perf_counter() - start) / iters


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--size", type=int, default=224, help="frame side S (pixels)")
    parser.add_argument("--width", type=int, default=0, help="frame width (0: S, square frames)")
    parser.add_argument("--frames", type=int, default=5, help="frames per clip T")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5, help="timed inference runs")
    parser.add_argument(
        "--train-iters", type=int, default=3, help="timed training iterations (0: no training)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--output", default="", help="write the results as JSON here")
    parser.add_argument(
        "--deform-attn-memory",
        action="store_true",
        help="compare the pixel decoder's training iteration before issue 19 and with the lean "
        "deformable attention (peak memory, time; a fresh process per run)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each variant for --deform-attn-memory"
    )
    # One run of one variant (a child process of --deform-attn-memory): prints its JSON.
    parser.add_argument(
        "--deform-attn-variant", choices=list(DEFORM_VARIANTS), help=argparse.SUPPRESS
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args()
    setup_logger(name="ovavss_d2")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.deform_attn_variant:
        print(json.dumps(pixel_decoder_iteration(args)))
        return
    if args.deform_attn_memory:
        compare_deform_attn(args)
        return

    cfg = get_cfg()
    with ints_for_float_keys():  # KEY 0 for a float key
        cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
    cfg.MODEL.DEVICE = args.device
    cfg.MODEL.WEIGHTS = ""
    clip_name = cfg.MODEL.TEXT_ENCODER.CLIP_MODEL
    tmp = tempfile.mkdtemp(prefix="ovavss_bench_")  # random CLIP weights (500+ MB): removed at exit
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    random_clip = False
    if cfg.MODEL.TEXT_ENCODER.NAME == "CLIPTextEncoder" and clip_name in CLIP_ARCHS:
        cache = cfg.MODEL.TEXT_ENCODER.CLIP_DOWNLOAD_ROOT or os.path.expanduser("~/.cache/clip")
        if not os.path.isfile(os.path.join(cache, os.path.basename(_clip_url(clip_name)))):
            cfg.MODEL.TEXT_ENCODER.CLIP_MODEL = random_clip_checkpoint(clip_name, tmp)
            random_clip = True
    cfg.freeze()

    torch.manual_seed(0)
    model = build_model(cfg)
    vocabulary = dataset_vocabulary(cfg.DATASETS.TEST[0]) if cfg.DATASETS.TEST else []
    model.set_vocabulary(vocabulary or model.train_keys or ["dog", "violin"])
    trainable = (model.dataset_to_train >= 0).nonzero().flatten().tolist()  # training classes
    classes = (trainable + trainable)[:2]
    clip = synthetic_clip(args.frames, args.size, seed=0, classes=classes, width=args.width)
    t = args.frames

    # Inference.
    model.eval()
    with torch.no_grad():
        infer_s = timed(lambda: model([clip]), device, args.warmup, args.iters, "inference")
        # Post-processing alone: semantic maps and instances from the class evidence.
        records = model.class_evidence([clip])
        post_s = timed(
            lambda: [model.postprocess(r) for r in records], device, 1, args.iters, "postprocess"
        )
        # FLOPs of the segmentation network on the padded batch the model builds.
        images, audio, _ = model._preprocess([clip])
        seg_gflops = count_flops(SegmentationNetwork(model, t), (images.tensor, audio))
        seg_s = timed(
            lambda: model._decode(images.tensor, audio, t), device, 1, args.iters, "network"
        )
        crop_gflops = crop_ms = None
        if (
            model.clip_visual is not None
        ):  # one CLIP image forward per (query, frame) in "crop" mode
            side = model.clip_visual.input_size
            tower = _ImageTower(model.clip_visual.clip_model)
            crops = torch.zeros(8, 3, side, side, device=model.clip_visual.device)
            crops = crops.to(model.clip_visual.dtype)
            crop_gflops = count_flops(tower, (crops[:1],))
            crop_ms = timed(lambda: tower(crops), device, 1, 2) / len(crops) * 1e3
    infer_memory = peak_memory_mb(device)

    # Training.
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)

    def train_step():
        losses = model([clip])
        optimizer.zero_grad()
        sum(losses.values()).backward()
        torch.nn.utils.clip_grad_norm_(params, 0.01)
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    train_s = train_memory = None
    if args.train_iters > 0:
        train_s = timed(train_step, device, 1, args.train_iters, "train")
        train_memory = peak_memory_mb(device)

    result = {
        "config": args.config_file,
        "overrides": args.opts,
        "device": _describe_device(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "text_encoder": cfg.MODEL.TEXT_ENCODER.NAME,
        "clip_weights": (
            ("random, architecture of " + clip_name if random_clip else clip_name)
            if cfg.MODEL.TEXT_ENCODER.NAME == "CLIPTextEncoder"
            else None
        ),
        "frames_per_clip": t,
        "frame_size": [args.size, args.width or args.size],
        "params_total_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "params_trainable_M": sum(p.numel() for p in params) / 1e6,
        "inference_ms_per_clip": infer_s * 1e3,
        "inference_fps": t / infer_s,
        "postprocess_ms_per_clip": post_s * 1e3,
        "segmentation_network_ms_per_clip": seg_s * 1e3,
        "gflops_per_frame_segmentation_network": seg_gflops / t,
        "achieved_gflops_per_s_segmentation_network": seg_gflops / seg_s,
        "clip_visual_mode": model.clip_visual.mode if model.clip_visual else "none",
        "gflops_per_clip_crop": crop_gflops,
        "ms_per_clip_crop_batch8": crop_ms,
        "train_s_per_iter": train_s,
        "cpu_seconds": {
            "inference_per_clip": CPU_SECONDS["inference"],
            "segmentation_network_per_clip": CPU_SECONDS["network"],
            "postprocess_per_clip": CPU_SECONDS["postprocess"],
            "train_per_iter": CPU_SECONDS.get("train"),
        },
        "peak_memory_inference_MB": infer_memory,
        "peak_memory_training_MB": train_memory,
        "peak_memory_kind": (
            "CUDA max_memory_allocated" if device.type == "cuda" else "process peak RSS"
        ),
        # 1-minute load average when done (this process counts): other jobs slow CPU timings.
        "load_average_1min": os.getloadavg()[0],
    }
    logger.info("Benchmark:\n%s", json.dumps(result, indent=1))
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            json.dump(result, f, indent=1)


# Variant -> (deformable-attention sampling, MODEL.PIXEL_DECODER.RECOMPUTE_ENCODER_LAYERS).
DEFORM_VARIANTS = {
    "before": ("plain autograd", False),  # as before issue 19
    "lean": ("lean", False),
    "lean+recompute": ("lean", True),
}


def pixel_decoder_iteration(args) -> Dict:
    """Peak memory and seconds of pixel-decoder training iterations in this process, with the
    deformable-attention sampling ``args.deform_attn_variant``.

    Inputs: random backbone features of ``T = args.frames`` frames of ``args.size x args.width``
    pixels (padded as the model pads them) and random audio embeddings; loss: the mean square of
    every output. One warm-up iteration, then one iteration measured for memory (CUDA: peak
    allocated; CPU: peak resident set size, reset before the iteration through
    ``/proc/self/clear_refs``) and timed with ``args.train_iters - 1`` more (wall and process CPU
    seconds: with one thread the latter is what the iteration takes on an idle core).
    """
    from detectron2.modeling import build_backbone

    from ovavss_d2.modeling.audio_encoder import build_audio_encoder
    from ovavss_d2.modeling.pixel_decoder import build_pixel_decoder, msdeform_attn

    sampling, recompute = DEFORM_VARIANTS[args.deform_attn_variant]
    if sampling == "plain autograd":  # the module reads this name at call time
        msdeform_attn.ms_deform_attn_sample = msdeform_attn._ms_deform_attn_sample_reference
    cfg = get_cfg()
    with ints_for_float_keys():
        cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.PIXEL_DECODER.RECOMPUTE_ENCODER_LAYERS = recompute
    device = torch.device(args.device)
    backbone = build_backbone(cfg)
    input_shape = backbone.output_shape()
    divisor = max(cfg.INPUT.SIZE_DIVISIBILITY, backbone.size_divisibility, 1)
    audio_dim = build_audio_encoder(cfg).output_dim
    del backbone
    torch.manual_seed(0)
    decoder = build_pixel_decoder(cfg, input_shape, audio_dim).to(device).train()
    height, width = (-(-side // divisor) * divisor for side in (args.size, args.width or args.size))
    features = {
        name: torch.randn(
            args.frames,
            spec.channels,
            -(-height // spec.stride),
            -(-width // spec.stride),
            device=device,
            requires_grad=True,
        )
        for name, spec in input_shape.items()
    }
    audio = torch.randn(1, args.frames, audio_dim, device=device)

    def iteration() -> None:
        mask_features, multi_scale = decoder.forward_features(features, audio, args.frames)[:2]
        loss = mask_features.square().mean() + sum(x.square().mean() for x in multi_scale)
        loss.backward()
        decoder.zero_grad(set_to_none=True)
        for x in features.values():
            x.grad = None

    iteration()  # warm-up
    synchronize(device)
    before_mb = _reset_peak_memory(device)
    seconds, cpu_seconds = [], []
    for i in range(max(args.train_iters, 1)):
        seconds.append(timed(iteration, device, 0, 1, "train"))
        cpu_seconds.append(CPU_SECONDS["train"])
        if i == 0:
            peak_mb = peak_memory_mb(device)
    tokens = [(-(-height // s.stride), -(-width // s.stride)) for s in input_shape.values()]
    return {
        "variant": args.deform_attn_variant,
        "padded_frame": [height, width],
        "feature_sizes": dict(zip(input_shape, tokens)),
        "peak_memory_MB": peak_mb,
        "memory_before_iteration_MB": before_mb,
        "activation_memory_MB": peak_mb - before_mb,
        "train_s_per_iter": statistics.median(seconds),
        "train_cpu_s_per_iter": statistics.median(cpu_seconds),
        "threads": torch.get_num_threads(),
    }


def _reset_peak_memory(device: torch.device) -> float:
    """Reset the peak-memory counter; return the memory held now in MB (CUDA: allocated; CPU:
    resident set size)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    with open("/proc/self/clear_refs", "w") as f:  # Linux: the peak RSS restarts from now
        f.write("5")
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def compare_deform_attn(args) -> None:
    """Run :func:`pixel_decoder_iteration` for each variant ``args.repeats`` times, alternately,
    each in a fresh process; log a Markdown table of the medians and their ratios to "before"."""
    argv = [
        sys.executable,
        os.path.abspath(__file__),
        "--config-file",
        args.config_file,
        "--size",
        str(args.size),
        "--width",
        str(args.width or args.size),
        "--frames",
        str(args.frames),
        "--device",
        args.device,
        "--threads",
        str(args.threads),
        "--train-iters",
        str(args.train_iters),
    ]
    # Large buffers straight from mmap and back at free (glibc), so that the CPU's resident set
    # follows the live tensors instead of memory the allocator keeps after a free.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    runs: Dict[str, List[Dict]] = {v: [] for v in DEFORM_VARIANTS}
    for _ in range(args.repeats):
        for variant in DEFORM_VARIANTS:
            proc = subprocess.run(
                argv + ["--deform-attn-variant", variant, *args.opts],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            runs[variant].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            logger.info("%s: %s", variant, json.dumps(runs[variant][-1]))
    keys = ("peak_memory_MB", "activation_memory_MB", "train_s_per_iter", "train_cpu_s_per_iter")
    medians = {v: {k: statistics.median(r[k] for r in runs[v]) for k in keys} for v in runs}
    first = runs["lean"][0]
    lines = [
        f"pixel decoder, one training iteration, T={args.frames}, frames "
        f"{args.size}x{args.width or args.size} (padded {first['padded_frame']}), "
        f"{_describe_device(torch.device(args.device))}, {first['threads']} thread(s), "
        f"median of {args.repeats} runs per variant",
        "",
        "| variant | sampling | recompute encoder layers | "
        + " | ".join(f"{key} (x before)" for key in keys)
        + " |",
        "|---|---|---|" + "---:|" * len(keys),
    ]
    for variant, (sampling, recompute) in DEFORM_VARIANTS.items():
        cells = [
            f"{medians[variant][k]:.4g} ({medians[variant][k] / medians['before'][k]:.2f})"
            for k in keys
        ]
        lines.append(f"| {variant} | {sampling} | {recompute} | " + " | ".join(cells) + " |")
    logger.info("Deformable attention, before and lean:\n%s", "\n".join(lines))
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            json.dump({"runs": runs, "medians": medians, "table": lines}, f, indent=1)


class _ImageTower(nn.Module):
    def __init__(self, clip_model: nn.Module):
        super().__init__()
        self.clip_model = clip_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.clip_model.encode_image(x)


def _clip_url(name: str) -> str:
    import clip

    return clip.clip._MODELS[name]


def _describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores"


if __name__ == "__main__":
    main()
