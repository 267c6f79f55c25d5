"""Safetensors files with json + struct only (no safetensors package), for the
interop tests (tests/io/interop.py, tests/nn/torch_interop.py).

A file is 8 bytes of little-endian header length n, n bytes of JSON (each
tensor's name -> {"dtype", "shape", "data_offsets": [begin, end]}, and an
optional "__metadata__" of strings) padded with spaces to a multiple of 8,
then the tensors' bytes, little-endian, row-major.
"""
import json
import struct

# struct format letter per safetensors dtype (BF16 has none: see pack)
CODES = {"F64": "d", "F32": "f", "F16": "e", "I32": "i", "I64": "q"}


def bf16_bits(x):
    """bfloat16 bits of x (x exactly representable in bfloat16)."""
    return struct.unpack("<I", struct.pack("<f", x))[0] >> 16


def pack(dtype, values):
    """The bytes of values stored as dtype."""
    if dtype == "BF16":
        return b"".join(struct.pack("<H", bf16_bits(v)) for v in values)
    return struct.pack("<%d%s" % (len(values), CODES[dtype]), *values)


def write(path, entries, metadata=None):
    """entries: (name, dtype, shape, raw bytes) in file order."""
    header, blob = {"__metadata__": dict(metadata or {})}, b""
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)


def read_raw(path):
    """(header dict, metadata included; the data bytes after the header)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def read(path):
    """(metadata, {name: (dtype, shape, [values])}) for every tensor."""
    header, body = read_raw(path)
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        code = CODES[e["dtype"]]
        count = (end - b) // struct.calcsize(code)
        out[name] = (e["dtype"], e["shape"], list(struct.unpack("<%d%s" % (count, code), body[b:end])))
    return header.get("__metadata__", {}), out
