#!/usr/bin/env python3
"""PyTorch reference of the HuBERT-ECG network exactly as `hubert-ecg` exports it to ONNX
(src/Inference/Onnx/HubertOnnxExporter.cs), for the GPU device check (infra/gpu/device-check.sh).

It loads the weights from the fp32 ONNX model itself (onnx_weights.py: the same tensors, already in the exporter's
layout: linear weights transposed to [in, out], Q/K/V fused with the 1/sqrt(head_dim) scale folded into Q, the
positional conv's weight norm folded), checks its outputs on the CPU against the ONNX model's (the `model run --provider
cpu` outputs of the same input), and then measures windows per second on CUDA for the given batches: fp32 with TF32
off and on, and fp16 (matrix products and convolutions in fp16; LayerNorm, GroupNorm, softmax, the mean over frames
and the sigmoid in fp32, as the fp16 ONNX model does), each with and without a CUDA graph. Every measured batch goes
from pinned host memory to the GPU and its embedding and probabilities back, synchronously, as the .NET scorer does.

Results are appended to a JSON-lines file read by compare.py's table.
"""

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_weights  # noqa: E402

WINDOW = 6000


def load_torch():
    try:
        import numpy
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        print(f"torch reference: cannot import PyTorch and numpy here ({e}); no PyTorch numbers", flush=True)
        return None
    return numpy, torch, F


class Reference:
    """The exported forward with weights on one device; matrix products in `cdtype`, normalisations in fp32."""

    def __init__(self, torch, F, arch, tensors, device, cdtype):
        self.torch, self.F, self.arch, self.cd = torch, F, arch, cdtype
        to32 = torch.float32

        def weight(name, dtype):
            t = tensors.get(name)
            if t is None:
                raise KeyError(f"the model has no initializer {name}")
            if t.dtype != "float32":
                raise ValueError(f"{name} is {t.dtype}: give the fp32 model (the reference casts for fp16 itself)")
            value = torch.frombuffer(bytearray(t.data), dtype=torch.float32).reshape(t.dims)
            return value.to(device=device, dtype=dtype)

        a = arch
        self.convs = []
        for i, kernel in enumerate(a["conv_kernel"]):
            p = f"feature_extractor.conv_layers.{i}."
            conv = {
                "w": weight(p + "conv.weight", cdtype),
                "b": weight(p + "conv.bias", cdtype) if a["conv_bias"] else None,
                "stride": a["conv_stride"][i],
                "norm": None,
            }
            if a["feat_extract_norm"] == "group" and i == 0:
                conv["norm"] = ("group", weight(p + "layer_norm.weight", to32), weight(p + "layer_norm.bias", to32))
            elif a["feat_extract_norm"] == "layer":
                conv["norm"] = ("layer", weight(p + "layer_norm.weight", to32), weight(p + "layer_norm.bias", to32))
            self.convs.append(conv)
        self.eps = float(a["layer_norm_eps"])
        self.proj_ln = self.ln_params(weight, "feature_projection.layer_norm") if a["feat_proj_layer_norm"] else None
        self.proj = self.linear_params(weight, "feature_projection.projection")
        self.pos_w = weight("encoder.pos_conv_embed.conv.weight", cdtype)
        self.pos_b = weight("encoder.pos_conv_embed.conv.bias", cdtype)
        self.pos_k = int(a["num_conv_pos_embeddings"])
        self.pos_groups = int(a["num_conv_pos_embedding_groups"])
        self.stable = bool(a["do_stable_layer_norm"])
        self.enc_ln = self.ln_params(weight, "encoder.layer_norm")
        self.hidden = int(a["hidden_size"])
        self.heads = int(a["num_attention_heads"])
        self.layers = []
        for layer in range(int(a["num_hidden_layers"])):
            p = f"encoder.layers.{layer}."
            self.layers.append({
                "qkv": self.linear_params(weight, p + "attention.qkv"),
                "out": self.linear_params(weight, p + "attention.out_proj"),
                "ln": self.ln_params(weight, p + "layer_norm"),
                "ff1": self.linear_params(weight, p + "feed_forward.intermediate_dense"),
                "ff2": self.linear_params(weight, p + "feed_forward.output_dense"),
                "final_ln": self.ln_params(weight, p + "final_layer_norm"),
            })
        self.classifier = self.linear_params(weight, "classifier") if "classifier.bias" in tensors else None

    def ln_params(self, weight, name):
        return weight(name + ".weight", self.torch.float32), weight(name + ".bias", self.torch.float32)

    def linear_params(self, weight, name):
        return weight(name + ".weight_t", self.cd), weight(name + ".bias", self.cd)

    def layer_norm(self, x, params, eps):
        w, b = params
        return self.F.layer_norm(x.float(), (x.shape[-1],), w, b, eps).to(self.cd)

    @staticmethod
    def linear(x, params):
        w, b = params
        return x @ w + b

    def gelu(self, x):
        return self.F.gelu(x)  # the exporter's com.microsoft Gelu: the exact (erf) form

    def attention(self, x, layer):
        batch, frames, hidden = x.shape
        heads = self.heads
        qkv = self.linear(x, layer["qkv"])
        q, k, v = qkv.split(hidden, dim=-1)
        q = q.reshape(batch, frames, heads, hidden // heads).permute(0, 2, 1, 3)
        k_t = k.reshape(batch, frames, heads, hidden // heads).permute(0, 2, 3, 1)
        v = v.reshape(batch, frames, heads, hidden // heads).permute(0, 2, 1, 3)
        weights = self.torch.softmax((q @ k_t).float(), dim=-1).to(self.cd)  # scale already folded into Q
        context = (weights @ v).permute(0, 2, 1, 3).reshape(batch, frames, hidden)
        return self.linear(context, layer["out"])

    def forward(self, x):
        """x: float32 [batch, 6000] -> (embedding float32 [batch, hidden], probabilities float32 [batch, labels] or None)."""
        F = self.F
        h = x.to(self.cd).unsqueeze(1)
        for conv in self.convs:
            h = F.conv1d(h, conv["w"], conv["b"], stride=conv["stride"])
            if conv["norm"] is not None:
                kind, w, b = conv["norm"]
                if kind == "group":
                    h = F.group_norm(h.float(), h.shape[1], w, b, 1e-5).to(self.cd)
                else:
                    h = self.layer_norm(h.transpose(1, 2), (w, b), 1e-5).transpose(1, 2)
            h = self.gelu(h)
        h = h.transpose(1, 2)
        if self.proj_ln is not None:
            h = self.layer_norm(h, self.proj_ln, self.eps)
        h = self.linear(h, self.proj)
        pos = F.conv1d(h.transpose(1, 2), self.pos_w, self.pos_b, padding=self.pos_k // 2, groups=self.pos_groups)
        if self.pos_k % 2 == 0:
            pos = pos[:, :, :-1]
        h = h + self.gelu(pos).transpose(1, 2)
        if not self.stable:
            h = self.layer_norm(h, self.enc_ln, self.eps)
        for layer in self.layers:
            if self.stable:
                h = h + self.attention(self.layer_norm(h, layer["ln"], self.eps), layer)
                h = h + self.linear(self.gelu(self.linear(self.layer_norm(h, layer["final_ln"], self.eps), layer["ff1"])), layer["ff2"])
            else:
                h = self.layer_norm(h + self.attention(h, layer), layer["ln"], self.eps)
                h = self.layer_norm(h + self.linear(self.gelu(self.linear(h, layer["ff1"])), layer["ff2"]), layer["final_ln"], self.eps)
        if self.stable:
            h = self.layer_norm(h, self.enc_ln, self.eps)
        embedding = h.float().mean(dim=1)
        if self.classifier is None:
            return embedding, None
        logits = self.linear(embedding.to(self.cd), self.classifier)
        return embedding, self.torch.sigmoid(logits.float())


def relative(torch, test, ref):
    return float((test - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def check_cpu(np, torch, net, args, size):
    """The reference against the ONNX model on the CPU, same input: the fp32 target of the device check."""
    x = torch.from_numpy(np.load(args.input).astype(np.float32))
    with torch.inference_mode():
        embedding, probabilities = net.forward(x)
    ref_embedding = torch.from_numpy(np.load(os.path.join(args.onnx_cpu, "embedding.npy")))
    rel_embedding = relative(torch, embedding, ref_embedding)
    result = {"kind": "parity", "label": f"{size} PyTorch CPU fp32 vs ONNX Runtime CPU fp32", "mode": "fp32", "embedding_max_rel": rel_embedding}
    checks = [f"embedding max rel diff {rel_embedding:.2e}"]
    ok = rel_embedding <= 1e-4
    probabilities_path = os.path.join(args.onnx_cpu, "probabilities.npy")
    if probabilities is not None and os.path.exists(probabilities_path):
        ref_probabilities = torch.from_numpy(np.load(probabilities_path))
        rel_probabilities = relative(torch, probabilities, ref_probabilities)
        result["probabilities_max_rel"] = rel_probabilities
        checks.append(f"probabilities max rel diff {rel_probabilities:.2e}")
        ok = ok and rel_probabilities <= 1e-4
    result["passed"] = ok
    print(f"{'PASS' if ok else 'FAIL'} {result['label']}: {'; '.join(checks)} (target <= 1e-04)", flush=True)
    append(args.results, result)
    return ok


def append(path, row):
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def measure(torch, net, batch, seconds, graph, labels):
    device = "cuda"
    host_in = torch.empty(batch, WINDOW).uniform_(-1, 1).pin_memory()
    static_in = torch.empty(batch, WINDOW, device=device)
    host_embedding = torch.empty(batch, net.hidden).pin_memory()
    host_probabilities = torch.empty(batch, max(labels, 1)).pin_memory()

    def copy_out(embedding, probabilities):
        host_embedding.copy_(embedding, non_blocking=True)
        if probabilities is not None:
            host_probabilities.copy_(probabilities, non_blocking=True)

    if graph:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                net.forward(static_in)
        torch.cuda.current_stream().wait_stream(side)
        cuda_graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(cuda_graph):
            graph_embedding, graph_probabilities = net.forward(static_in)

        def step():
            static_in.copy_(host_in, non_blocking=True)
            cuda_graph.replay()
            copy_out(graph_embedding, graph_probabilities)
            torch.cuda.synchronize()
    else:
        def step():
            static_in.copy_(host_in, non_blocking=True)
            copy_out(*net.forward(static_in))
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    runs = 0
    start = time.perf_counter()
    while True:
        step()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and runs >= 3:
            break
    return runs * batch / elapsed, elapsed * 1000 / runs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="fp32 ONNX model written by hubert-ecg")
    parser.add_argument("--size", required=True, help="size name for the results (small, base)")
    parser.add_argument("--input", required=True, help="float32 .npy (B, 6000) the ONNX CPU outputs were made from")
    parser.add_argument("--onnx-cpu", required=True, help="folder of `hubert-ecg model run --provider cpu` outputs for --input")
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--results", required=True, help="JSON-lines file to append to")
    parser.add_argument("--deadline", type=float, default=0, help="Unix time after which no new measurement starts (0: none)")
    parser.add_argument("--check-only", action="store_true", help="only the CPU check, no timing")
    args = parser.parse_args()

    loaded = load_torch()
    if loaded is None:
        return 3
    np, torch, F = loaded
    print(f"torch {torch.__version__}, CUDA {'available: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'not available'}", flush=True)
    try:
        tensors, metadata = onnx_weights.read(args.model)
        arch = json.loads(metadata["hubert_ecg.architecture"])
        labels = len(json.loads(metadata.get("hubert_ecg.label_codes", "[]")))
        started = time.perf_counter()
        cpu_net = Reference(torch, F, arch, tensors, "cpu", torch.float32)
        print(f"loaded {args.model} ({len(tensors)} initializers) in {time.perf_counter() - started:.1f} s", flush=True)
    except (OSError, KeyError, ValueError, onnx_weights.OnnxReadError) as e:
        print(f"torch reference: cannot load {args.model}: {e}", flush=True)
        return 2
    cpu_ok = check_cpu(np, torch, cpu_net, args, args.size)
    del cpu_net
    if args.check_only:
        return 0 if cpu_ok else 1
    if not torch.cuda.is_available():
        print("torch reference: CUDA is not available to PyTorch here; no PyTorch timings", flush=True)
        return 0 if cpu_ok else 1

    torch.backends.cudnn.benchmark = True
    batches = [int(b) for b in args.batches.split(",") if b]
    nets = {}
    for precision, tf32 in (("fp32", False), ("fp32", True), ("fp16", False)):
        dtype = torch.float16 if precision == "fp16" else torch.float32
        if precision not in nets:
            nets[precision] = Reference(torch, F, arch, tensors, "cuda", dtype)
        net = nets[precision]
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        for batch in batches:
            for graph in (False, True):
                row = {"kind": "bench", "engine": "pytorch", "size": args.size, "batch": batch, "precision": precision, "tf32": tf32, "graph": graph}
                if args.deadline and time.time() > args.deadline:
                    row["note"] = "skipped: out of the check's time budget"
                else:
                    try:
                        with torch.no_grad():
                            rate, ms = measure(torch, net, batch, args.seconds, graph, labels)
                        row["windows_per_s"] = rate
                        row["ms_per_batch"] = ms
                    except RuntimeError as e:
                        row["note"] = f"PyTorch failed: {str(e).splitlines()[0][:200]}"
                        torch.cuda.empty_cache()
                print(f"pytorch {args.size} batch {batch} {precision}{' tf32' if tf32 else ''} graph {'on' if graph else 'off'}: "
                      + (f"{row['windows_per_s']:.0f} windows/s ({row['ms_per_batch']:.1f} ms/batch)" if "windows_per_s" in row else row["note"]), flush=True)
                append(args.results, row)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return 0 if cpu_ok else 1


if __name__ == "__main__":
    sys.exit(main())
