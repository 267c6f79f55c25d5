#!/usr/bin/python3
"""bench/torch_reference.py - the PyTorch side of issue 6's benchmark suite.

Runs ONE workload in this process (so its peak RSS is its own) and prints one
JSON line: median ms/iter, tokens/s, ru_maxrss. Each iteration is forward +
backward + Adam step (zero_grad(set_to_none=True), PyTorch 1.13 defaults:
lr 1e-3, the single-tensor Adam), float32, on one fixed batch.

  W1   char-LSTM: one-hot vocab 65, hidden 256, seq 64, batch 32, Linear(256,65),
       cross-entropy over all steps
  W2   char-GRU: same shapes
  W3   sentiment LSTM: Embedding(2002,128), LSTM hidden 64, seq 40, batch 32,
       last h -> Linear(64,1) -> BCE with logits
  W4   nn.TransformerEncoderLayer(128, 4 heads, ff 512, dropout=0.0,
       batch_first=True, post-norm, relu) on [32,64,128]; loss mean(out^2)
  W5   1000 elementwise ops (x*0.9, tanh, x*0.9, ...) on 16 floats, fwd+bwd
       (dy = ones), no optimizer: reported as ns per op
  W6-T<t>-B<b>  W1 (fused) at sequence t, batch b

--variant fused (nn.LSTM / nn.GRU) or composed (the cell written with the same
primitives in Python: input projection of all steps in one matmul, unbound
per step (unbind: one stack in backward, not T zero-padded copies), then per
step h @ W_hh^T, gates, elementwise), for W1/W2 (W6: fused only).
Recurrent inputs are time-major [T, B, C] (nn.LSTM's native layout).

BLAS settings must exist before libopenblas is loaded, so the script sets
OPENBLAS_NUM_THREADS / OPENBLAS_CORETYPE and re-executes itself before it
imports torch:
  --threads N --split torch   torch.set_num_threads(N), OPENBLAS_NUM_THREADS=1
  --threads N --split blas    torch.set_num_threads(1), OPENBLAS_NUM_THREADS=N
  --coretype unset|Cooperlake|Haswell|...   OPENBLAS_CORETYPE (unset: removed)
Never both sides threaded (that oversubscribes 2 cores).

Example: /usr/bin/python3 bench/torch_reference.py W1 --threads 2 --split blas \
             --coretype Cooperlake
"""
import argparse
import json
import os
import resource
import sys
import time

WORKLOADS = ("W1", "W2", "W3", "W4", "W5")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workload", help="W1 W2 W3 W4 W5 or W6-T<seq>-B<batch>")
    ap.add_argument("--variant", choices=("fused", "composed"), default="fused")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--split", choices=("torch", "blas"), default="torch")
    ap.add_argument("--coretype", default="unset")
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds of timed iterations")
    ap.add_argument("--min-iters", type=int, default=10)
    ap.add_argument("--warmup", type=float, default=0.5, help="seconds of warm-up (>= 3 iters)")
    ap.add_argument("--cpu-clock", action="store_true",
                    help="time iterations by the process's CPU clock (as the C benchmarks' "
                         "--cpu-clock: 1 thread on a shared machine; sums threads)")
    a = ap.parse_args(argv)
    if a.threads == 1:
        a.split = "torch"   # the two splits are the same configuration
    return a


def blas_env(a):
    """The environment this configuration needs, before torch is imported."""
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = str(a.threads if a.split == "blas" else 1)
    env["OMP_NUM_THREADS"] = str(a.threads if a.split == "torch" else 1)
    env.pop("OPENBLAS_CORETYPE", None)   # some environments set Haswell
    if a.coretype != "unset":
        env["OPENBLAS_CORETYPE"] = a.coretype
    env["TG_TORCH_REFERENCE_CHILD"] = "1"
    return env


def reexec_if_needed(a):
    if os.environ.get("TG_TORCH_REFERENCE_CHILD") == "1":
        return
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:],
              blas_env(a))


# ---- workloads: each returns (step function, tokens per iteration, description) ----
def char_rnn(torch, kind, variant, T=64, B=32, V=65, H=256):
    nn, F = torch.nn, torch.nn.functional
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, V, (T, B), generator=g)
    x = F.one_hot(ids, V).float()                       # [T, B, V]
    y = torch.randint(0, V, (T, B), generator=g)
    rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(V, H)
    fc = nn.Linear(H, V)
    params = list(rnn.parameters()) + list(fc.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    run = rnn if variant == "fused" else composed_rnn(torch, kind, rnn)

    def step():
        opt.zero_grad(set_to_none=True)
        out = run(x)[0]                                 # [T, B, H]
        loss = F.cross_entropy(fc(out).reshape(T * B, V), y.reshape(T * B))
        loss.backward()
        opt.step()
    return step, T * B


def composed_rnn(torch, kind, rnn):
    """The cell from primitives, with nn.LSTM/nn.GRU's own parameters."""
    F = torch.nn.functional
    w_ih, w_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
    H = rnn.hidden_size

    def lstm(x):
        T, B = x.shape[0], x.shape[1]
        xp = F.linear(x, w_ih, b_ih + b_hh).unbind(0)   # T x [B, 4H], all steps at once
        h = x.new_zeros(B, H)
        c = x.new_zeros(B, H)
        outs = []
        for t in range(T):
            z = xp[t] + h @ w_hh.t()
            i, f, gg, o = z.chunk(4, 1)
            i, f, o, gg = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o), torch.tanh(gg)
            c = f * c + i * gg
            h = o * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs), (h, c)

    def gru(x):
        T, B = x.shape[0], x.shape[1]
        xp = F.linear(x, w_ih, b_ih).unbind(0)          # T x [B, 3H]
        h = x.new_zeros(B, H)
        outs = []
        for t in range(T):
            xr, xz, xn = xp[t].chunk(3, 1)
            hr, hz, hn = F.linear(h, w_hh, b_hh).chunk(3, 1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)                 # reset after (PyTorch's GRU)
            h = (1 - z) * n + z * h
            outs.append(h)
        return torch.stack(outs), h
    return lstm if kind == "lstm" else gru


def sentiment(torch, T=40, B=32, V=2002, E=128, H=64):
    nn, F = torch.nn, torch.nn.functional
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, V, (T, B), generator=g)
    target = torch.randint(0, 2, (B, 1), generator=g).float()
    emb, lstm, fc = nn.Embedding(V, E), nn.LSTM(E, H), nn.Linear(H, 1)
    params = list(emb.parameters()) + list(lstm.parameters()) + list(fc.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        h_last = lstm(emb(ids))[1][0][-1]              # [B, H]
        loss = F.binary_cross_entropy_with_logits(fc(h_last), target)
        loss.backward()
        opt.step()
    return step, T * B


def transformer(torch, T=64, B=32, D=128, heads=4, ff=512):
    nn = torch.nn
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, D, generator=g)
    layer = nn.TransformerEncoderLayer(D, heads, dim_feedforward=ff, dropout=0.0,
                                       batch_first=True, norm_first=False)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = layer(x).pow(2).mean()
        loss.backward()
        opt.step()
    return step, T * B


CHAIN = 1000


def tape_chain(torch, width=16):
    x = (torch.arange(width, dtype=torch.float32) - 8) / 8
    x.requires_grad_(True)
    dy = torch.ones(width)

    def step():
        h = x
        for i in range(CHAIN):
            h = torch.tanh(h) if i % 2 else h * 0.9
        h.backward(dy)
        x.grad = None
    return step, 0


def build(torch, a):
    w = a.workload
    if w == "W1":
        return char_rnn(torch, "lstm", a.variant)
    if w == "W2":
        return char_rnn(torch, "gru", a.variant)
    if w == "W3":
        return sentiment(torch)
    if w == "W4":
        return transformer(torch)
    if w == "W5":
        return tape_chain(torch)
    if w.startswith("W6-T") and "-B" in w:
        t, b = w[4:].split("-B")
        return char_rnn(torch, "lstm", a.variant, T=int(t), B=int(b))
    sys.exit("torch_reference.py: unknown workload %r (W1..W5, W6-T<seq>-B<batch>)" % w)


# ---- timing --------------------------------------------------------------------------
def measure(step, a):
    """Median seconds per iteration after warm-up; each iteration timed alone."""
    t_end = time.perf_counter() + a.warmup
    for i in range(3):
        step()
    while time.perf_counter() < t_end:
        step()
    times = []
    clock = time.process_time if a.cpu_clock else time.perf_counter
    t_end = time.perf_counter() + a.min_time
    while len(times) < a.min_iters or time.perf_counter() < t_end:
        t0 = clock()
        step()
        times.append(clock() - t0)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    return med, n


def main(argv):
    a = parse_args(argv)
    reexec_if_needed(a)
    import torch
    torch.set_num_threads(a.threads if a.split == "torch" else 1)
    torch.manual_seed(0)
    step, tokens = build(torch, a)
    med, n = measure(step, a)
    variant = a.variant if a.workload in ("W1", "W2") or a.workload.startswith("W6") else "fused"
    if a.workload in ("W3", "W4", "W5"):
        variant = {"W3": "fused", "W4": "nn.TransformerEncoderLayer", "W5": "autograd"}[a.workload]
    res = {
        "side": "pytorch", "workload": a.workload, "variant": variant, "threads": a.threads,
        "config": "%s threads, coretype %s" % (a.split, a.coretype),
        "split": a.split, "coretype": a.coretype,
        "ms": med * 1e3, "iters": n,
        "tokens_per_s": tokens / med if tokens else None,
        "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "torch": torch.__version__,
    }
    if a.workload == "W5":
        res["ns_per_op"] = med * 1e9 / CHAIN
    print(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv[1:])
