#!/usr/bin/python3
"""PyTorch round trip for every layer with a PyTorch twin, both ways, both dtypes.

    /usr/bin/python3 tests/nn/torch_interop.py BUILD/tests/nn/torch_interop

1. tapegrad -> torch: torch_interop writes each layer's parameters with
   tg_params_save; here they load with module.load_state_dict(..., strict=True),
   the module runs tapegrad's inputs, and its outputs and the gradients of
   L = sum(w * out) must equal tapegrad's.
2. torch -> tapegrad: each module with PyTorch's own initialisation writes its
   state_dict (as safetensors, with json + struct: no safetensors package
   needed) with inputs, outputs and gradients; torch_interop loads it with
   tg_params_load (strict) and compares.
Tolerance: 1e-5 in float32, 1e-10 in float64, on every output and gradient.
Exit 0 when all match, 1 otherwise, 77 (skipped) when torch is missing.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import torch
    from torch import nn
except ImportError:
    print("SKIP: PyTorch is not installed for /usr/bin/python3 (apt-get install python3-torch)")
    sys.exit(77)

B, T, S = 2, 3, 4
LAYERS = ["rnn", "lstm", "gru", "linear", "embedding", "conv1d", "layer_norm", "mha", "mha_kdim",
          "encoder", "encoder_pre", "decoder", "decoder_pre"]
DTYPES = {"float32": (torch.float32, "F32", "f", 1e-5), "float64": (torch.float64, "F64", "d", 1e-10)}
CODES = {"F32": "f", "F64": "d", "I32": "i", "I64": "q"}


def build(name):
    """The module torch_interop.c builds, with the same configuration."""
    if name in ("rnn", "lstm", "gru"):
        cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[name]
        return cls(3, 4, num_layers=2, bidirectional=True)
    if name == "linear":
        return nn.Linear(3, 5)
    if name == "embedding":
        return nn.Embedding(7, 4)
    if name == "conv1d":
        return nn.Conv1d(3, 5, 2, padding=1)
    if name == "layer_norm":
        return nn.LayerNorm(6)
    if name == "mha":
        return nn.MultiheadAttention(8, 2, batch_first=True)
    if name == "mha_kdim":
        return nn.MultiheadAttention(8, 2, batch_first=True, kdim=5, vdim=5)
    pre = name.endswith("_pre")
    if name.startswith("encoder"):
        return nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=pre)
    return nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=pre)


def forward(name, m, x, mem):
    """The outputs, named as torch_interop.c names them."""
    if name in ("rnn", "gru"):
        y, h = m(x)
        return {"y": y, "h_n": h}
    if name == "lstm":
        y, (h, c) = m(x)
        return {"y": y, "h_n": h, "c_n": c}
    if name == "mha":
        return {"y": m(x, x, x, need_weights=False)[0]}
    if name == "mha_kdim":
        return {"y": m(x, mem, mem, need_weights=False)[0]}
    if name.startswith("encoder"):
        return {"y": m(x)}
    if name.startswith("decoder"):
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        return {"y": m(x, mem, tgt_mask=causal)}
    return {"y": m(x)}


def read_st(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for key, e in header.items():
        if key == "__metadata__":
            continue
        b, end = e["data_offsets"]
        code = CODES[e["dtype"]]
        count = (end - b) // struct.calcsize(code)
        vals = struct.unpack("<%d%s" % (count, code), body[b:end])
        dt = torch.int64 if e["dtype"] in ("I32", "I64") else (torch.float64 if e["dtype"] == "F64" else torch.float32)
        out[key] = torch.tensor(vals, dtype=dt).reshape(e["shape"])
    return out


def write_st(path, tensors):
    header, blob = {"__metadata__": {"format": "pt"}}, b""
    for key, t in tensors.items():
        t = t.detach().contiguous()
        st_dt = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}[t.dtype]
        raw = struct.pack("<%d%s" % (t.numel(), CODES[st_dt]), *t.reshape(-1).tolist())
        header[key] = {"dtype": st_dt, "shape": list(t.shape), "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)


def max_diff(a, b):
    if a is None or b is None or a.shape != b.shape:
        return float("inf")
    d = (a.double() - b.double()).abs()
    return float("inf") if not torch.isfinite(d).all() else float(d.max()) if d.numel() else 0.0


def run_module(name, m, io, dtype):
    """Outputs and gradients of L = sum(w * out) on io's inputs."""
    x = io["x"] if name == "embedding" else io["x"].to(dtype).requires_grad_(True)
    mem = io["mem"].to(dtype).requires_grad_(True) if "mem" in io else None
    outs = forward(name, m, x, mem)
    loss = sum((outs[k] * io["w." + k].to(dtype)).sum() for k in outs)
    loss.backward()
    grads = {"grad." + k: p.grad for k, p in m.named_parameters()}
    if x.is_floating_point():
        grads["grad.x"] = x.grad
    if mem is not None:
        grads["grad.mem"] = mem.grad
    return outs, grads


def tapegrad_to_torch(d, name, dt_name):
    dtype, _, _, tol = DTYPES[dt_name]
    m = build(name).to(dtype).train()
    state = read_st(os.path.join(d, "%s_%s.tg.safetensors" % (name, dt_name)))
    m.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True)
    io = read_st(os.path.join(d, "%s_%s.tg_io.safetensors" % (name, dt_name)))
    outs, grads = run_module(name, m, io, dtype)
    fails = 0
    for key, got in list(outs.items()) + list(grads.items()):
        diff = max_diff(got, io.get(key))
        bad = not diff <= tol
        fails += bad
        print("  tg->torch %-10s %-8s %-34s max |diff| %.3g%s" % (name, dt_name, key, diff, "   FAIL" if bad else ""))
    return fails


def torch_to_tapegrad_files(d, name, dt_name, seed):
    dtype = DTYPES[dt_name][0]
    torch.manual_seed(seed)
    m = build(name).to(dtype).train()
    write_st(os.path.join(d, "%s_%s.pt.safetensors" % (name, dt_name)), m.state_dict())
    io = {}
    if name in ("rnn", "lstm", "gru"):
        io["x"] = torch.randn(T, B, 3, dtype=dtype)
    elif name == "embedding":
        io["x"] = torch.randint(0, 7, (B, T))
    elif name == "conv1d":
        io["x"] = torch.randn(B, 3, 5, dtype=dtype)
    else:
        width = {"linear": 3, "layer_norm": 6}.get(name, 8)
        io["x"] = torch.randn(B, T, width, dtype=dtype)
    if name == "mha_kdim" or name.startswith("decoder"):
        io["mem"] = torch.randn(B, S, 5 if name == "mha_kdim" else 8, dtype=dtype)
    probe = forward(name, m, io["x"], io.get("mem"))
    for k, v in probe.items():
        io["w." + k] = torch.rand(v.shape, dtype=dtype) - 0.5
    m.zero_grad()
    outs, grads = run_module(name, m, io, dtype)
    io.update({k: v.detach() for k, v in outs.items()})
    io.update({k: v.detach() for k, v in grads.items()})
    write_st(os.path.join(d, "%s_%s.pt_io.safetensors" % (name, dt_name)), io)


def main():
    if len(sys.argv) != 2 or not os.path.exists(sys.argv[1]):
        print("usage: torch_interop.py BUILD/tests/nn/torch_interop")
        return 2
    tool = sys.argv[1]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        if subprocess.call([tool, "write", d]) != 0:
            print("torch_interop write failed")
            return 1
        fails = 0
        for i, name in enumerate(LAYERS):
            for dt_name in DTYPES:
                fails += tapegrad_to_torch(d, name, dt_name)
                torch_to_tapegrad_files(d, name, dt_name, 100 + i)
        print("tapegrad -> torch: %d layers x 2 dtypes, %d over tolerance" % (len(LAYERS), fails))
        fails += subprocess.call([tool, "read", d]) != 0
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
