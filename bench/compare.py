#!/usr/bin/python3
"""bench/compare.py - tapegrad vs PyTorch 1.13, side by side (issue 6).

One command:  /usr/bin/python3 bench/compare.py            (about 12-15 minutes)
              /usr/bin/python3 bench/compare.py --quick    (about 3 minutes)

1. Builds the workload programs in a release build dir (default build-h).
2. Sweeps PyTorch's configurations once per workload and thread count:
   OPENBLAS_CORETYPE unset / Cooperlake x threads given to torch
   (torch.set_num_threads(n), OPENBLAS_NUM_THREADS=1) or to OpenBLAS
   (torch 1 thread, OPENBLAS_NUM_THREADS=n); never both. Keeps the fastest.
3. Runs both sides alternately for --rounds rounds (the order flips each
   round), threads 1 and 2, one process per workload and side, and takes the
   median over rounds of each run's median ms/iter.
4. Prints the table (and writes it with --out FILE as markdown, --json FILE raw).

oneDNN (issue 10's anchor): where the build has bench/onednn_reference (meson
builds it when libdnnl-dev is installed), W1-W3 also run with oneDNN's fused
RNN primitives, alternating with the other sides; the table gets a oneDNN
column. --no-onednn leaves it out.

The machine is shared: every run records how many cores other processes kept
busy meanwhile (from /proc/stat minus the run's own CPU time). A run whose
threads had to share a core (other load > idle cores + --busy-limit) is
retried (up to --retries times; before each run it waits up to --max-wait
seconds for the cores it needs to be idle) and flagged with '!' in the table if it never
ran clean.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"
TORCH_REF = os.path.join(HERE, "torch_reference.py")
PROGRAMS = {"W1": "w1_char_lstm", "W2": "w2_char_gru", "W3": "w3_sentiment_lstm",
            "W4": "w4_transformer", "W5": "w5_tape_overhead"}
ONEDNN_PROGRAM = "onednn_reference"
ONEDNN_WORKLOADS = ("W1", "W2", "W3")
# Torch variants compared per workload: (variant, label)
TORCH_VARIANTS = {
    "W1": [("fused", "nn.LSTM (fused)"), ("composed", "LSTM composed in Python")],
    "W2": [("fused", "nn.GRU (fused)"), ("composed", "GRU composed in Python")],
    "W3": [("fused", "nn.LSTM (fused)")],
    "W4": [("fused", "nn.TransformerEncoderLayer (post-norm, dropout=0.0)")],
    "W5": [("fused", "autograd")],
}
W6_SHAPES = [(16, 32), (64, 32), (256, 32), (64, 8), (64, 128)]   # (seq, batch)
W6_QUICK = [(16, 32), (64, 32), (256, 32)]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 round, short timing, no PyTorch config sweep, W6 seq only")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6")
    ap.add_argument("--min-time", type=float, default=None, help="seconds timed per run")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-h"))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--no-sweep", action="store_true",
                    help="PyTorch: coretype unset, threads to torch (no config search)")
    ap.add_argument("--no-onednn", action="store_true", help="leave oneDNN's column out")
    ap.add_argument("--busy-limit", type=float, default=0.3)
    ap.add_argument("--retries", type=int, default=2)
    ap.add_argument("--max-wait", type=float, default=20.0,
                    help="seconds to wait for idle cores before each run")
    ap.add_argument("--out", help="write the report as markdown here")
    ap.add_argument("--json", help="write every run's raw result here")
    ap.add_argument("--report-from", metavar="JSON",
                    help="no runs: print the report of --json files written earlier "
                    "(comma-separated: merged, e.g. a --threads 1 and a --threads 2 run)")
    a = ap.parse_args()
    a.threads = [int(t) for t in a.threads.split(",")]
    a.workloads = a.workloads.split(",")
    if a.rounds is None:
        a.rounds = 1 if a.quick else 3
    if a.min_time is None:
        a.min_time = 0.7 if a.quick else 1.5
    if a.quick:
        a.no_sweep = True
    return a


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---- build -----------------------------------------------------------------------------
def build(a):
    bd = a.build_dir
    if not os.path.isdir(os.path.join(bd, "meson-info")):
        subprocess.run(["meson", "setup", bd, "-Dbuildtype=release"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    else:
        info = json.load(open(os.path.join(bd, "meson-info", "intro-buildoptions.json")))
        bt = next(o["value"] for o in info if o["name"] == "buildtype")
        if bt != "release":
            subprocess.run(["meson", "configure", bd, "-Dbuildtype=release"], check=True,
                           stdout=subprocess.DEVNULL)
    # only the bench targets, one by one: a broken test elsewhere, or a layer
    # not in the library yet, must not stop the other measurements
    missing = []
    for w, prog in PROGRAMS.items():
        p = subprocess.run(["ninja", "-C", bd, "bench/" + prog], capture_output=True, text=True)
        if p.returncode != 0:
            log("build of %s failed; skipping %s:\n%s" % (prog, w, p.stdout[-600:]))
            missing.append(w)
    a.workloads = [w for w in a.workloads
                   if w not in missing and not (w == "W6" and "W1" in missing)]
    if not a.no_onednn:   # optional: built only where libdnnl-dev is installed
        p = subprocess.run(["ninja", "-C", bd, "bench/" + ONEDNN_PROGRAM], capture_output=True,
                           text=True)
        if p.returncode != 0:
            log("no %s (libdnnl-dev missing?): no oneDNN column" % ONEDNN_PROGRAM)


def onednn_available(a):
    return not a.no_onednn and os.path.exists(os.path.join(a.build_dir, "bench", ONEDNN_PROGRAM))


def environment_notes(a):
    notes = []
    exe = os.path.join(a.build_dir, "bench", PROGRAMS["W1"])
    ldd = subprocess.run(["ldd", exe], capture_output=True, text=True).stdout
    blis = [l.split("=>")[1].split("(")[0].strip() for l in ldd.splitlines() if "blis" in l]
    notes.append("tapegrad links %s -> %s" % (", ".join(blis) or "no libblis?!",
                                            ", ".join(os.path.realpath(b) for b in blis)))
    lib = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
    notes.append("PyTorch's libblas.so.3 -> %s" % lib)
    if "openblas" not in lib:
        notes.append("WARNING: PyTorch is not using OpenBLAS (run bench/setup.sh)")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    notes.append("CPU: %s, %d cores online" % (cpu, os.cpu_count()))
    return notes


# ---- one run, with a measure of the machine's other load --------------------------------
def cpu_busy_seconds():
    f = open("/proc/stat").readline().split()[1:]
    v = [int(x) for x in f]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_once(cmd, env=None):
    b0, c0, t0 = cpu_busy_seconds(), children_cpu(), time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    wall = time.time() - t0
    other = max(0.0, (cpu_busy_seconds() - b0) - (children_cpu() - c0)) / max(wall, 1e-3)
    res = None
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            res = json.loads(line)
    if p.returncode != 0 or res is None:
        log("  FAILED (%d): %s\n%s" % (p.returncode, " ".join(cmd), (p.stderr or p.stdout)[-800:]))
        return {"failed": True, "cmd": " ".join(cmd), "other_load": other}
    res["other_load"] = other
    res["cmd"] = " ".join(cmd)
    return res


def other_load_now(seconds=0.5):
    """Cores kept busy by other processes over a short sample (we are idle)."""
    b0, t0 = cpu_busy_seconds(), time.time()
    time.sleep(seconds)
    return (cpu_busy_seconds() - b0) / (time.time() - t0)


def wait_for_quiet(cmd, a):
    """Up to --max-wait seconds for the cores this run needs to be free."""
    end = time.time() + a.max_wait
    while time.time() < end:
        if other_load_now() <= free_cores(cmd) + a.busy_limit:
            return
        time.sleep(1.5)


def run(cmd, a, env=None):
    """Wait for quiet; retry while other processes competed for our cores."""
    best = None
    for attempt in range(a.retries + 1):
        wait_for_quiet(cmd, a)
        r = run_once(cmd, env)
        if best is None or r.get("other_load", 9) < best.get("other_load", 9):
            best = r
        if r.get("failed") or r["other_load"] <= free_cores(cmd) + a.busy_limit:
            break
        log("  busy machine (%.2f other cores), retrying: %s" % (r["other_load"], " ".join(cmd[:3])))
    best["contended"] = best.get("other_load", 0) > free_cores(cmd) + a.busy_limit
    return best


def free_cores(cmd):
    """Cores a run leaves idle: other load up to this much does not compete."""
    threads = int(cmd[cmd.index("--threads") + 1]) if "--threads" in cmd else 1
    return max(0, (os.cpu_count() or 1) - threads)


def ours_cmd(a, w, threads, seq=None, batch=None):
    prog = PROGRAMS["W1" if w.startswith("W6") else w]
    cmd = [os.path.join(a.build_dir, "bench", prog), "--threads", str(threads),
           "--min-time", str(a.min_time)]
    if seq:
        cmd += ["--seq", str(seq), "--batch", str(batch)]
    return cmd


def onednn_cmd(a, w, threads):
    return [os.path.join(a.build_dir, "bench", ONEDNN_PROGRAM), w, "--threads", str(threads),
            "--min-time", str(a.min_time)]


def torch_cmd(a, w, variant, threads, split, coretype, min_time=None):
    return [PY, TORCH_REF, w, "--variant", variant, "--threads", str(threads), "--split", split,
            "--coretype", coretype, "--min-time", str(min_time or a.min_time)]


def torch_configs(threads):
    splits = ["torch"] if threads == 1 else ["torch", "blas"]
    return [(s, c) for c in ("unset", "Cooperlake") for s in splits]


# ---- the plan -------------------------------------------------------------------------------
def jobs(a):
    """(key, workload id, seq, batch, torch variants) for every workload asked for."""
    out = []
    for w in a.workloads:
        if w == "W6":
            for seq, batch in (W6_QUICK if a.quick else W6_SHAPES):
                if (seq, batch) == (64, 32) and "W1" in a.workloads:
                    continue   # that is W1 itself
                out.append(("W6-T%d-B%d" % (seq, batch), seq, batch, [("fused", "nn.LSTM (fused)")]))
        else:
            out.append((w, None, None, TORCH_VARIANTS[w]))
    return out


def sweep(a, plan):
    """Best PyTorch config per (workload, variant, threads); W6 reuses W1 fused's."""
    best = {}
    for w, seq, batch, variants in plan:
        for variant, _ in variants:
            for t in a.threads:
                if w.startswith("W6") or (w == "W5" and t > 1):
                    continue
                if a.no_sweep or w == "W5":   # W5 uses no BLAS
                    best[(w, variant, t)] = ("torch", "unset")
                    continue
                trials = []
                for split, core in torch_configs(t):
                    r = run(torch_cmd(a, w, variant, t, split, core, min_time=1.0), a)
                    if not r.get("failed"):
                        trials.append((r["ms"], split, core, r["contended"]))
                        log("  sweep %s %s %dT %s/%s: %.2f ms" % (w, variant, t, split, core, r["ms"]))
                if trials:
                    ms, split, core, _ = min(trials)
                    best[(w, variant, t)] = (split, core)
                    best[("sweep", w, variant, t)] = trials
    for t in a.threads:
        best.setdefault(("W1", "fused", t), ("torch", "unset"))
    return best


def config_for(best, w, variant, t):
    if w.startswith("W6"):
        return best.get(("W1", "fused", t), ("torch", "unset"))
    return best.get((w, variant, t), ("torch", "unset"))


def measure(a, plan, best):
    results = []   # dicts with side, key, variant, threads, round
    for rnd in range(a.rounds):
        log("round %d/%d" % (rnd + 1, a.rounds))
        for w, seq, batch, variants in plan:
            for t in a.threads:
                if w == "W5" and t > 1:
                    continue
                runs = [("tapegrad", None)] + [("pytorch", v) for v, _ in variants]
                if w in ONEDNN_WORKLOADS and onednn_available(a):
                    runs.append(("onednn", None))
                if rnd % 2:
                    runs.reverse()   # alternate who goes first
                for side, variant in runs:
                    if side == "tapegrad":
                        r = run(ours_cmd(a, w, t, seq, batch), a)
                    elif side == "onednn":
                        r = run(onednn_cmd(a, w, t), a)
                    else:
                        split, core = config_for(best, w, variant, t)
                        r = run(torch_cmd(a, w, variant, t, split, core), a)
                    r.update({"key": w, "side": side, "tvariant": variant, "threads": t,
                              "round": rnd})
                    results.append(r)
                    if not r.get("failed"):
                        log("  %-12s %dT %-8s %-9s %9.3f ms  (other load %.2f)" %
                            (w, t, side, variant or "", r["ms"], r["other_load"]))
    return results


# ---- aggregation and the table ---------------------------------------------------------------
def agg(results, key, side, threads, variant=None):
    rs = [r for r in results if r["key"] == key and r["side"] == side and r["threads"] == threads
          and (side != "pytorch" or r["tvariant"] == variant) and not r.get("failed")]
    if not rs:
        return None
    out = dict(rs[0])
    out["ms"] = statistics.median(r["ms"] for r in rs)
    out["ms_all"] = [round(r["ms"], 3) for r in rs]
    out["contended"] = all(r.get("contended") for r in rs)
    out["rss_kb"] = max(r["rss_kb"] for r in rs)
    for k in ("ns_per_op", "floor_ms", "floor_best_ms", "floor_packed_ms", "floor_packed_best_ms",
              "lib_allocs", "all_allocs"):
        if k in rs[0] and rs[0][k] is not None:
            out[k] = statistics.median(r[k] for r in rs)
    if rs[0].get("tokens_per_s"):
        out["tokens_per_s"] = statistics.median(r["tokens_per_s"] for r in rs)
    return out


def fmt(v, f="%.1f", none="-"):
    return none if v is None else f % v


def cfg_name(r):
    if r is None:
        return "-"
    split = "torch thr" if r["split"] == "torch" else "OpenBLAS thr"
    return "%s, coretype %s" % (split, r["coretype"])


def report(a, plan, best, results, notes, elapsed):
    L = []
    L.append("| workload | thr | tapegrad ms/iter | PyTorch ms/iter | PyTorch variant, best config |"
             " torch/tapegrad | oneDNN ms/iter | oneDNN/tapegrad | tapegrad tok/s | PyTorch tok/s |"
             " GEMM floor ms: per-step calls / packed once | tapegrad/floor | allocs/step |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    flag = lambda r: "!" if r and r.get("contended") else ""
    for w, seq, batch, variants in plan:
        if w == "W5":
            continue
        for t in a.threads:
            ours = agg(results, w, "tapegrad", t)
            dnn = agg(results, w, "onednn", t)
            floor = ours.get("floor_best_ms") if ours else None
            packed = ours.get("floor_packed_best_ms") if ours else None
            for variant, label in variants:
                th = agg(results, w, "pytorch", t, variant)
                ratio = th["ms"] / ours["ms"] if ours and th else None
                L.append("| %s | %d | %s%s | %s%s | %s; %s | %s | %s%s | %s | %s | %s | %s / %s |"
                         " %s / %s | %s |" % (
                    w, t, fmt(ours and ours["ms"], "%.2f"), flag(ours),
                    fmt(th and th["ms"], "%.2f"), flag(th), label, cfg_name(th),
                    fmt(ratio, "**%.2fx**"), fmt(dnn and dnn["ms"], "%.2f"), flag(dnn),
                    fmt(dnn["ms"] / ours["ms"] if ours and dnn else None, "**%.2fx**"),
                    fmt(ours and ours.get("tokens_per_s"), "%.0f"),
                    fmt(th and th.get("tokens_per_s"), "%.0f"), fmt(floor, "%.2f"),
                    fmt(packed, "%.2f"), fmt(ours["ms"] / floor if ours and floor else None, "%.2fx"),
                    fmt(ours["ms"] / packed if ours and packed else None, "%.2fx"),
                    fmt(ours and ours.get("lib_allocs"), "%.0f")))
    L.append("")
    L.append("Ratio > 1: tapegrad is faster. GEMM floor: the step's GEMMs timed by calling "
             "bli_sgemm_ex alone at the same shapes (each at the best of 1..thr threads); in the "
             "packed-once formulation the per-step recurrent products (h W_hh^T, dZ W_hh) are "
             "timed through the engine instead, on W_hh packed once per recording; "
             "'!' = every run of that cell had to share its cores with other processes "
             "(other load > idle cores + %.1f)." % a.busy_limit)
    # W5
    ours5, th5 = agg(results, "W5", "tapegrad", 1), agg(results, "W5", "pytorch", 1, "fused")
    if ours5 or th5:
        L.append("")
        L.append("**W5 tape overhead** (1000 elementwise ops on 16 floats, fwd+bwd, 1 thread): "
                 "tapegrad %s ns/op, PyTorch autograd %s ns/op (%s), target <= 100 ns/op." % (
                     fmt(ours5 and ours5.get("ns_per_op")), fmt(th5 and th5.get("ns_per_op"), "%.0f"),
                     fmt(th5["ns_per_op"] / ours5["ns_per_op"] if ours5 and th5 else None,
                         "%.0fx faster")))
    # W6 scaling
    w6 = [(seq, batch) for (w, seq, batch, _) in plan if w.startswith("W6")]
    if w6:
        shapes = sorted(set(w6 + ([(64, 32)] if "W1" in a.workloads else [])),
                        key=lambda sb: (sb[1], sb[0]))   # by batch, then seq
        L.append("")
        L.append("**W6 scaling** (W1 at other shapes; ms/iter, and ms per time step):")
        L.append("")
        L.append("| seq | batch | " + " | ".join("tapegrad %dT | PyTorch %dT" % (t, t)
                                                   for t in a.threads) +
                 " | tapegrad 2T speed-up | PyTorch 2T speed-up |")
        L.append("|---|---|" + "---|---|" * len(a.threads) + "---|---|")
        for seq, batch in shapes:
            key = "W1" if (seq, batch) == (64, 32) else "W6-T%d-B%d" % (seq, batch)
            cells, sp = [], {}
            for t in a.threads:
                o, p = agg(results, key, "tapegrad", t), agg(results, key, "pytorch", t, "fused")
                cells.append("%s (%s/step) | %s" % (fmt(o and o["ms"], "%.2f"),
                                                    fmt(o and o["ms"] / seq, "%.3f"),
                                                    fmt(p and p["ms"], "%.2f")))
                sp[t] = (o, p)
            s_o = s_p = None
            if 1 in sp and 2 in sp:
                (o1, p1), (o2, p2) = sp[1], sp[2]
                s_o = o1["ms"] / o2["ms"] if o1 and o2 else None
                s_p = p1["ms"] / p2["ms"] if p1 and p2 else None
            L.append("| %d | %d | %s | %s | %s |" % (seq, batch, " | ".join(cells),
                                                     fmt(s_o, "%.2fx"), fmt(s_p, "%.2fx")))
        L.append("")
        L.append("Linear in sequence length means constant ms/step down a column at fixed batch.")
    # 2-thread speed-up, RSS
    if 1 in a.threads and 2 in a.threads:
        L.append("")
        parts = []
        for w, _, _, variants in plan:
            if w.startswith("W6") or w == "W5":
                continue
            o1, o2 = agg(results, w, "tapegrad", 1), agg(results, w, "tapegrad", 2)
            p1, p2 = agg(results, w, "pytorch", 1, "fused"), agg(results, w, "pytorch", 2, "fused")
            d1, d2 = agg(results, w, "onednn", 1), agg(results, w, "onednn", 2)
            parts.append("%s tapegrad %s, PyTorch %s%s" % (
                w, fmt(o1["ms"] / o2["ms"] if o1 and o2 else None, "%.2fx"),
                fmt(p1["ms"] / p2["ms"] if p1 and p2 else None, "%.2fx"),
                ", oneDNN %.2fx" % (d1["ms"] / d2["ms"]) if d1 and d2 else ""))
        L.append("**2-thread speed-up** (1-thread time / 2-thread time): " + "; ".join(parts) +
                 ". Target for W1: >= 1.6x.")
    L.append("")
    L.append("**Peak RSS** (ru_maxrss of the workload's own process, largest over rounds, MB):")
    L.append("")
    L.append("| workload | thr | tapegrad | PyTorch | PyTorch above its W5 baseline |")
    L.append("|---|---|---|---|---|")
    base = agg(results, "W5", "pytorch", 1, "fused")
    for w, _, _, variants in plan:
        if w.startswith("W6") or w == "W5":
            continue
        for t in a.threads:
            o, p = agg(results, w, "tapegrad", t), agg(results, w, "pytorch", t, "fused")
            L.append("| %s | %d | %s | %s | %s |" % (
                w, t, fmt(o and o["rss_kb"] / 1024), fmt(p and p["rss_kb"] / 1024),
                fmt((p["rss_kb"] - base["rss_kb"]) / 1024 if p and base else None)))
    L.append("")
    L.append("PyTorch's W5 process (import torch + a 16-float chain) is its fixed baseline.")
    L += targets(a, results)
    # the sweep
    sw = [(k, v) for k, v in best.items() if k[0] == "sweep"]
    if sw:
        L.append("")
        L.append("**PyTorch configuration sweep** (one run each, ms/iter, '!' contended; the "
                 "best is used above):")
        L.append("")
        for (_, w, variant, t), trials in sw:
            L.append("- %s %s %dT: " % (w, variant, t) + ", ".join(
                "%s/%s %.1f%s" % ("torch thr" if tr[1] == "torch" else "OpenBLAS thr", tr[2], tr[0],
                                  "!" if len(tr) > 3 and tr[3] else "")
                for tr in sorted(trials, key=lambda x: x[0])))
    L.append("")
    L.append("Environment: " + "; ".join(notes) + ". Rounds: %d, %.1f s timed per run, total "
             "%.0f s." % (a.rounds, a.min_time, elapsed))
    return "\n".join(L)


def targets(a, results):
    """Issue 6's targets: met, or missed by how much."""
    rows = []

    def check(name, value, goal, higher_is_better, unit="x"):
        if value is None:
            rows.append("| %s | - | %s%s | not measured |" % (name, fmt(goal, "%.2f"), unit))
            return
        ok = value >= goal if higher_is_better else value <= goal
        if ok:
            verdict = "met"
        elif goal == 0 or value == 0:
            verdict = "missed"
        else:
            verdict = "missed by %.2fx" % (goal / value if higher_is_better else value / goal)
        rows.append("| %s | %.2f%s | %s %.2f%s | %s |" % (
            name, value, unit, ">=" if higher_is_better else "<=", goal, unit, verdict))

    def ms(key, side, t, variant="fused"):
        r = agg(results, key, side, t, variant)
        return r["ms"] if r else None

    for w, goal in (("W1", None), ("W2", None), ("W3", None), ("W4", 1.2)):
        if w not in a.workloads:
            continue
        for t in a.threads:
            o, p = ms(w, "tapegrad", t), ms(w, "pytorch", t)
            g = goal or (1.3 if t == 1 else 1.5)
            check("%s %dT: PyTorch fused / tapegrad" % (w, t), p / o if o and p else None, g, True)
    for w in ONEDNN_WORKLOADS:
        for t in a.threads:
            o, d = ms(w, "tapegrad", t), ms(w, "onednn", t)
            if o and d:
                check("%s %dT: oneDNN fused / tapegrad" % (w, t), d / o, 1.0, True)
    for w in ("W1", "W2", "W3"):
        for t in a.threads:
            o = agg(results, w, "tapegrad", t) if w in a.workloads else None
            if o and o.get("floor_best_ms"):
                check("%s %dT: time / GEMM floor" % (w, t), o["ms"] / o["floor_best_ms"], 1.25, False)
            if o and o.get("floor_packed_best_ms"):
                check("%s %dT: time / packed-once GEMM floor" % (w, t),
                      o["ms"] / o["floor_packed_best_ms"], 1.25, False)
    o5 = agg(results, "W5", "tapegrad", 1)
    if o5:
        check("W5: ns per op, fwd+bwd", o5["ns_per_op"], 100, False, " ns")
    if 1 in a.threads and 2 in a.threads and "W1" in a.workloads:
        o1, o2 = ms("W1", "tapegrad", 1), ms("W1", "tapegrad", 2)
        check("W1: 2-thread speed-up", o1 / o2 if o1 and o2 else None, 1.6, True)
    for w in ("W1", "W4"):
        for t in a.threads:
            o, p = agg(results, w, "tapegrad", t), agg(results, w, "pytorch", t, "fused")
            if o and p:
                check("%s %dT: peak RSS, tapegrad / PyTorch" % (w, t), o["rss_kb"] / p["rss_kb"],
                      1.0, False)
    allocs = [r.get("lib_allocs", 0) for r in results if r["side"] == "tapegrad"
              and not r.get("failed")]
    if allocs:
        check("heap allocations per steady step (max over runs)", max(allocs), 0, False, "")
    if not rows:
        return []
    return ["", "**Targets of issues 6 and 10**:", "", "| target | measured | goal | verdict |",
            "|---|---|---|---|"] + rows


def main():
    a = parse_args()
    t0 = time.time()
    if a.report_from:   # several files (comma-separated) merge, e.g. 1-thread and 2-thread runs
        files = [json.load(open(f)) for f in a.report_from.split(",")]
        saved = files[0]
        for k in ("workloads", "rounds", "min_time", "quick", "busy_limit"):
            setattr(a, k, saved["args"][k])
        a.threads = sorted({t for f in files for t in f["args"]["threads"]})
        results = [r for f in files for r in f["results"]]
        best = {tuple(k): (v if k[0] == "sweep" else tuple(v)) for f in files for k, v in f["best"]}
        text = report(a, jobs(a), best, results, saved["notes"], sum(f["elapsed"] for f in files))
        print(text)
        if a.out:
            with open(a.out, "w") as f:
                f.write(text + "\n")
        return 0
    if not a.no_build:
        log("building %s (release) ..." % a.build_dir)
        build(a)
    notes = environment_notes(a)
    for n in notes:
        log(n)
    plan = jobs(a)
    best = sweep(a, plan)
    results = measure(a, plan, best)
    elapsed = time.time() - t0
    text = report(a, plan, best, results, notes, elapsed)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    if a.json:
        args = {k: getattr(a, k) for k in ("threads", "workloads", "rounds", "min_time", "quick",
                                           "busy_limit")}
        with open(a.json, "w") as f:
            json.dump({"args": args, "notes": notes, "elapsed": elapsed, "results": results,
                       "best": [[list(k), v] for k, v in best.items()]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
