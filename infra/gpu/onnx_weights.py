"""Reads the weights and metadata of an ONNX model written by `hubert-ecg model export/random`, with the standard
library alone (no onnx or protobuf package): the PyTorch reference loads exactly the tensors the ONNX model holds.

Only what the exporter writes is understood: initializers with raw_data (float32, float16, int64) or float_data, and
string metadata. Anything else (external data, other types) is refused with a message naming the tensor.
"""

import struct

# TensorProto.DataType values used by the exporter, with the struct format and size of one element.
_TYPES = {1: ("float32", "f", 4), 10: ("float16", "e", 2), 7: ("int64", "q", 8), 11: ("float64", "d", 8)}


class OnnxReadError(ValueError):
    pass


def _varint(buf, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise OnnxReadError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise OnnxReadError("varint too long")


def _fields(buf):
    """Yields (field number, wire type, value) of one message; LEN values are memoryview slices."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = buf[pos:pos + 8]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise OnnxReadError(f"field {number} runs past the end of its message")
            value = buf[pos:pos + length]
            pos += length
        elif wire == 5:
            value = buf[pos:pos + 4]
            pos += 4
        else:
            raise OnnxReadError(f"unsupported wire type {wire} in field {number}")
        yield number, wire, value


class Tensor:
    """One initializer: name, dims, element type name and its little-endian bytes."""

    def __init__(self, name, dims, dtype, data):
        self.name = name
        self.dims = dims
        self.dtype = dtype
        self.data = data

    def count(self):
        n = 1
        for d in self.dims:
            n *= d
        return n

    def values(self):
        """The elements as Python numbers (small tensors and tests; the PyTorch side reads `data` directly)."""
        _, fmt, size = next(v for v in _TYPES.values() if v[0] == self.dtype)
        return list(struct.unpack(f"<{len(self.data) // size}{fmt}", self.data))


def _tensor(buf):
    name, dims, dtype, raw, floats = None, [], None, None, []
    for number, wire, value in _fields(buf):
        if number == 1:
            if wire == 2:
                pos = 0
                while pos < len(value):
                    d, pos = _varint(value, pos)
                    dims.append(d)
            else:
                dims.append(value)
        elif number == 2:
            dtype = value
        elif number == 4:
            if wire == 2:
                floats.extend(struct.unpack(f"<{len(value) // 4}f", value))
            else:
                floats.append(struct.unpack("<f", value)[0])
        elif number == 8:
            name = bytes(value).decode("utf-8")
        elif number == 9:
            raw = value
        elif number == 14 and value == 1:
            raise OnnxReadError(f"tensor {name or '?'}: external data is not supported")
    if name is None:
        raise OnnxReadError("an initializer has no name")
    if dtype not in _TYPES:
        raise OnnxReadError(f"tensor {name}: unsupported element type {dtype}")
    type_name, fmt, size = _TYPES[dtype]
    if raw is None:
        if dtype != 1:
            raise OnnxReadError(f"tensor {name}: {type_name} without raw_data is not supported")
        raw = struct.pack(f"<{len(floats)}f", *floats)
    tensor = Tensor(name, dims, type_name, raw)
    if len(raw) != tensor.count() * size:
        raise OnnxReadError(f"tensor {name}: {len(raw)} bytes for dims {dims} of {type_name}")
    return tensor


def read(path):
    """Returns (initializers by name, metadata dict) of the ONNX model at `path`."""
    with open(path, "rb") as f:
        buf = memoryview(f.read())
    graph = None
    metadata = {}
    for number, wire, value in _fields(buf):
        if number == 7 and wire == 2:
            graph = value
        elif number == 14 and wire == 2:
            key = val = ""
            for n, _, v in _fields(value):
                if n == 1:
                    key = bytes(v).decode("utf-8")
                elif n == 2:
                    val = bytes(v).decode("utf-8")
            metadata[key] = val
    if graph is None:
        raise OnnxReadError(f"{path}: no graph (not an ONNX model?)")
    tensors = {}
    for number, wire, value in _fields(graph):
        if number == 5 and wire == 2:
            t = _tensor(value)
            tensors[t.name] = t
    return tensors, metadata


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: onnx_weights.py MODEL.onnx   (lists initializers and metadata keys)")
    tensors, metadata = read(sys.argv[1])
    for key in sorted(metadata):
        print(f"metadata {key}: {metadata[key][:100]}")
    total = 0
    for t in tensors.values():
        total += t.count()
        print(f"{t.name} {t.dtype} {t.dims}")
    print(f"{len(tensors)} initializers, {total} elements")
