#!/usr/bin/python3
"""Safetensors interop: a file written here by a tiny Python writer (json +
struct only) loads in tapegrad, and a file tapegrad writes parses here with
json + struct and holds the same numbers.

    /usr/bin/python3 tests/io/interop.py BUILD/tests/io/st_tool
Exit 0 on success, 1 on a mismatch, 77 (meson: skipped) when st_tool is missing.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

FMT = {"F64": "d", "F32": "f", "F16": "e", "I32": "i", "I64": "q"}


def bf16(x):
    """bfloat16 bits of x (x exactly representable in bfloat16)."""
    return struct.unpack("<I", struct.pack("<f", x))[0] >> 16


def write_python_file(path):
    tensors = [  # name, dtype, shape, values
        ("emb.weight", "F32", [2, 3], [0.5, -1.25, 3.0, 1e-3, 2.0 ** -20, -7.5]),
        ("head.bias", "F64", [2], [1.0 / 3.0, -1e300]),
        ("half", "F16", [3], [1.0, -0.5, 65504.0]),
        ("brain", "BF16", [2], [1.5, -256.0]),
        ("counts", "I64", [2], [-3, 123456789]),
        ("labels", "I32", [3], [0, -1, 2147483647]),
        ("zero.size", "F32", [0, 4], []),
        ("caf\u00e9 \u2713", "F32", [], [2.5]),
    ]
    header, blob = {"__metadata__": {"format": "pt", "source": "interop.py"}}, b""
    for name, dt, shape, vals in tensors:
        if dt == "BF16":
            raw = b"".join(struct.pack("<H", bf16(v)) for v in vals)
        else:
            raw = struct.pack("<%d%s" % (len(vals), FMT[dt]), *vals)
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)
    return tensors


def read_python(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        count = (end - b) // struct.calcsize(FMT[e["dtype"]])
        out[name] = (e["dtype"], e["shape"], list(struct.unpack("<%d%s" % (count, FMT[e["dtype"]]), body[b:end])))
    return header.get("__metadata__", {}), out


def torch_reads(path, want):
    """Where PyTorch is installed, rebuild the state_dict as torch tensors from
    the raw bytes (what safetensors.torch.load_file does) and compare."""
    try:
        import torch
    except ImportError:
        print("tapegrad -> torch: skipped (no torch)")
        return 0
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32}
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    bad = 0
    for name, (dt, shape, vals) in want.items():
        e = header[name]
        b, end = e["data_offsets"]
        raw = bytearray(data[8 + n + b:8 + n + end])
        t = (torch.frombuffer(raw, dtype=dtypes[dt]) if raw else torch.empty(0, dtype=dtypes[dt]))
        t = t.reshape(e["shape"])
        ref = torch.tensor(vals, dtype=dtypes[dt]).reshape(shape)
        if not torch.equal(t, ref):
            print("MISMATCH in torch: %r %r vs %r" % (name, t, ref))
            bad += 1
    print("tapegrad -> torch %s: %d tensors checked" % (torch.__version__, len(want)))
    return bad


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        print("SKIP: st_tool not given or not executable")
        return 77
    tool, failures = sys.argv[1], 0
    with tempfile.TemporaryDirectory() as d:
        # Python writes, tapegrad reads.
        py_file = os.path.join(d, "from_python.safetensors")
        tensors = write_python_file(py_file)
        run = subprocess.run([tool, "read", py_file, "source", "format"], capture_output=True, text=True)
        if run.returncode != 0:
            print("st_tool read failed:", run.stderr)
            return 1
        got = {}
        for line in run.stdout.splitlines():
            parts = line.split("\t")
            if parts[0] == "meta":
                got[("meta", parts[1])] = parts[2]
            else:
                vals = [float(v) for v in parts[3].split()] if parts[3] else []
                got[parts[0]] = (parts[1], parts[2], vals)
        for name, dt, shape, vals in tensors:
            if dt in ("F32", "F16"):  # the value the file holds
                vals = struct.unpack("<%d%s" % (len(vals), FMT[dt]), struct.pack("<%d%s" % (len(vals), FMT[dt]), *vals))
            want = (dt, ",".join(map(str, shape)), [float(v) for v in vals])
            if got.get(name) != want:
                print("MISMATCH %r: tapegrad read %r, Python wrote %r" % (name, got.get(name), want))
                failures += 1
        if got.get(("meta", "source")) != "interop.py":
            print("metadata 'source' read as %r" % got.get(("meta", "source")))
            failures += 1
        print("python -> tapegrad: %d tensors checked" % len(tensors))

        # tapegrad writes, Python reads.
        c_file = os.path.join(d, "from_c.safetensors")
        if subprocess.run([tool, "write", c_file]).returncode != 0:
            return 1
        meta, t = read_python(c_file)
        want = {
            "layer.weight": ("F32", [2, 3], [i * 0.5 - 1 for i in range(6)]),
            "layer.bias": ("F64", [3], [1e-300, -2.5, 3.25]),
            "ids": ("I32", [4], [-1, 0, 7, 2147483647]),
            "scalar": ("F32", [], [1.5]),
            "empty": ("F64", [0, 3], []),
        }
        if meta.get("format") != "pt":
            print("metadata format is %r, want 'pt'" % meta.get("format"))
            failures += 1
        if t != want:
            print("MISMATCH tapegrad -> Python:\n got  %r\n want %r" % (t, want))
            failures += 1
        print("tapegrad -> python: %d tensors checked" % len(want))
        failures += torch_reads(c_file, want)
    print("interop: %s" % ("FAILED" if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
