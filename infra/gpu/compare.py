#!/usr/bin/env python3
"""Helpers of infra/gpu/device-check.sh that need no third-party package (the check must also run, CUDA-less, on a
machine without numpy): write the input windows, compare two sets of model outputs against the device check's
targets, and print the throughput table from the results file (JSON lines).

  compare.py input --batch N --seed S --out FILE.npy
  compare.py parity --ref DIR --test DIR --mode fp32|fp16 --label TEXT --results FILE.jsonl
  compare.py table --results FILE.jsonl
"""

import argparse
import ast
import json
import math
import random
import struct
import sys

FP32_RELATIVE = 1e-4  # largest |test - ref| over the largest |ref|, per output
FP16_PROBABILITY_ABS = 5e-3  # largest absolute difference of a probability
FP16_EMBEDDING_COSINE = 0.9999  # smallest cosine similarity of an embedding


def npy_read(path):
    """(shape, values) of a little-endian float32 C-order .npy file (format 1.0 to 3.0)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError(f"{path}: not a .npy file")
    major = data[6]
    if major == 1:
        header_len = struct.unpack("<H", data[8:10])[0]
        start = 10
    else:
        header_len = struct.unpack("<I", data[8:12])[0]
        start = 12
    header = ast.literal_eval(data[start:start + header_len].decode("latin1"))
    if header["descr"] != "<f4" or header["fortran_order"]:
        raise ValueError(f"{path}: expected little-endian float32 in C order, got {header}")
    shape = tuple(header["shape"])
    count = 1
    for d in shape:
        count *= d
    body = data[start + header_len:]
    if len(body) != 4 * count:
        raise ValueError(f"{path}: {len(body)} bytes of data for shape {shape}")
    return shape, struct.unpack(f"<{count}f", body)


def npy_write(path, shape, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join(f"{d}, " for d in shape)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack(f"<{len(values)}f", *values))


def make_input(args):
    # Preprocessed windows lie in [-1, 1]; a smooth part and noise, like a scaled ECG more than white noise alone.
    rng = random.Random(args.seed)
    values = []
    for b in range(args.batch):
        phase = rng.uniform(0, 2 * math.pi)
        rate = rng.uniform(0.8, 2.0)
        for i in range(6000):
            t = i / 100.0
            v = 0.6 * math.sin(2 * math.pi * rate * t + phase) + 0.3 * rng.uniform(-1, 1)
            values.append(max(-1.0, min(1.0, v)))
    npy_write(args.out, (args.batch, 6000), values)
    print(f"wrote {args.out}: {args.batch} windows of 6000 samples")
    return 0


def rows(shape, values):
    width = shape[-1]
    return [values[i:i + width] for i in range(0, len(values), width)]


def parity(args):
    result = {"kind": "parity", "label": args.label, "mode": args.mode}
    checks = []
    for name in ("embedding", "logits", "probabilities"):
        try:
            ref_shape, ref = npy_read(f"{args.ref}/{name}.npy")
            test_shape, test = npy_read(f"{args.test}/{name}.npy")
        except FileNotFoundError:
            if name == "logits":
                continue
            raise
        if ref_shape != test_shape:
            raise ValueError(f"{name}: shapes differ, {ref_shape} against {test_shape}")
        max_abs = max(abs(a - b) for a, b in zip(test, ref))
        scale = max(abs(b) for b in ref) or 1.0
        result[f"{name}_max_abs"] = max_abs
        result[f"{name}_max_rel"] = max_abs / scale
        if name == "embedding":
            cosines = []
            for a, b in zip(rows(test_shape, test), rows(ref_shape, ref)):
                dot = sum(x * y for x, y in zip(a, b))
                na = math.sqrt(sum(x * x for x in a))
                nb = math.sqrt(sum(y * y for y in b))
                cosines.append(dot / (na * nb) if na > 0 and nb > 0 else 0.0)
            result["embedding_min_cosine"] = min(cosines)
        if args.mode == "fp32" and name != "logits":
            checks.append((f"{name} max rel diff {max_abs / scale:.2e} <= {FP32_RELATIVE:.0e}", max_abs / scale <= FP32_RELATIVE))
    if args.mode == "fp16":
        checks.append((f"probabilities max abs diff {result['probabilities_max_abs']:.2e} <= {FP16_PROBABILITY_ABS:.0e}",
                       result["probabilities_max_abs"] <= FP16_PROBABILITY_ABS))
        checks.append((f"embedding min cosine {result['embedding_min_cosine']:.6f} >= {FP16_EMBEDDING_COSINE}",
                       result["embedding_min_cosine"] >= FP16_EMBEDDING_COSINE))
    if args.mode == "info":
        checks.append((f"embedding max rel diff {result['embedding_max_rel']:.2e}, probabilities max abs diff "
                       f"{result['probabilities_max_abs']:.2e}, embedding min cosine {result['embedding_min_cosine']:.6f} (no target)", True))
    passed = all(ok for _, ok in checks)
    result["passed"] = passed
    print(f"{'PASS' if passed else 'FAIL'} {args.label}: " + "; ".join(("" if ok else "NOT ") + text for text, ok in checks))
    with open(args.results, "a") as f:
        f.write(json.dumps(result) + "\n")
    return 0 if passed else 1


PRECISIONS = [("fp32", False, "fp32 TF32 off"), ("fp32", True, "fp32 TF32 on"), ("fp16", False, "fp16")]


def table(args):
    bench = {}
    notes = []
    try:
        with open(args.results) as f:
            lines = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        lines = []
    for r in lines:
        if r.get("kind") != "bench":
            continue
        key = (r["engine"], r["size"], r["batch"], r["precision"], bool(r.get("tf32")), bool(r["graph"]))
        bench[key] = r
    sizes = sorted({k[1] for k in bench}, key=lambda s: ["small", "base", "large"].index(s) if s in ("small", "base", "large") else 9)
    batches = sorted({k[2] for k in bench})
    header = f"{'size':<6} {'batch':>5}  {'precision':<14} {'CUDA graph':<10} {'ONNX Runtime':>14} {'PyTorch':>10} {'ORT/PyTorch':>11}"
    print(header)
    print("-" * len(header))

    def cell(r):
        if r is None:
            return None, "-"
        if r.get("windows_per_s") is not None:
            return r["windows_per_s"], f"{r['windows_per_s']:.0f}"
        note = r.get("note") or "failed"
        if note not in notes:
            notes.append(note)
        return None, f"[{notes.index(note) + 1}]"

    for size in sizes:
        for batch in batches:
            for precision, tf32, label in PRECISIONS:
                for graph in (False, True):
                    ort = bench.get(("onnxruntime", size, batch, precision, tf32, graph))
                    torch = bench.get(("pytorch", size, batch, precision, tf32, graph))
                    if ort is None and torch is None:
                        continue
                    ort_value, ort_text = cell(ort)
                    torch_value, torch_text = cell(torch)
                    ratio = f"{ort_value / torch_value:.2f}" if ort_value and torch_value else "-"
                    print(f"{size:<6} {batch:>5}  {label:<14} {'on' if graph else 'off':<10} {ort_text:>14} {torch_text:>10} {ratio:>11}")
    if not bench:
        print("(no throughput rows)")
    for i, note in enumerate(notes):
        print(f"[{i + 1}] {note}")
    print("windows/s: 5 s windows (6000 samples) per second, host input to host output, one caller, batches back to back")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("input")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", required=True)
    p = sub.add_parser("parity")
    p.add_argument("--ref", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--mode", choices=["fp32", "fp16", "info"], required=True)
    p.add_argument("--label", required=True)
    p.add_argument("--results", required=True)
    p = sub.add_parser("table")
    p.add_argument("--results", required=True)
    args = parser.parse_args()
    try:
        return {"input": make_input, "parity": parity, "table": table}[args.command](args)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
