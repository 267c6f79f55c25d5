#!/usr/bin/python3
"""Reference values for tests/optim/check_optim.c, from PyTorch 1.13.

Regenerate (needs torch):
    /usr/bin/python3 tests/optim/gen_reference.py > tests/optim/optim_reference.h

Problem: a linear model pred = x @ W + b, loss = mse(pred, y) (mean over the
8 elements), float64. W is in group 0 with the listed options; b is in a
second group with its own lr and weight decay. Three steps of
zero_grad / backward / step; W and b are recorded after each step.

    /usr/bin/python3 tests/optim/gen_reference.py --float32 > tests/optim/optim_reference_f32.h

writes the same cases with float32 parameters updated by PyTorch in float32
arithmetic, from the gradients check_optim.c's lin_grads feeds tapegrad (worked
in double from the float32 parameters, then rounded to float32).
"""
import sys

import torch

torch.set_default_dtype(torch.float64)

X = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [-1.0, 2.0, 0.75], [0.1, -0.3, 1.2]]
Y = [[1.0, -2.0], [0.5, 0.0], [-1.5, 2.5], [0.3, -0.7]]
W0 = [[0.2, -0.4], [0.7, 0.1], [-0.3, 0.5]]
B0 = [0.05, -0.15]

# name, kind, constructor, group-0 options, group-1 (lr, weight_decay)
CASES = [
    ("sgd", "SGD", torch.optim.SGD, dict(lr=0.1), (0.05, 0.02)),
    ("sgd_momentum_dampening_wd", "SGD", torch.optim.SGD,
     dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01), (0.05, 0.0)),
    ("sgd_nesterov", "SGD", torch.optim.SGD,
     dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), (0.2, 0.02)),
    ("rmsprop", "RMSPROP", torch.optim.RMSprop, dict(lr=0.01), (0.005, 0.02)),
    ("rmsprop_centered_momentum_wd", "RMSPROP", torch.optim.RMSprop,
     dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01), (0.02, 0.0)),
    ("adam", "ADAM", torch.optim.Adam, dict(lr=0.01), (0.005, 0.02)),
    ("adam_amsgrad_wd", "ADAM", torch.optim.Adam,
     dict(lr=0.01, betas=(0.8, 0.95), amsgrad=True, weight_decay=0.1), (0.02, 0.0)),
    ("adamw", "ADAMW", torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1), (0.005, 0.3)),
    ("adamw_amsgrad", "ADAMW", torch.optim.AdamW,
     dict(lr=0.01, betas=(0.7, 0.9), eps=1e-6, amsgrad=True), (0.02, 0.0)),
    ("adagrad", "ADAGRAD", torch.optim.Adagrad, dict(lr=0.1), (0.05, 0.02)),
    ("adagrad_decay_init_wd", "ADAGRAD", torch.optim.Adagrad,
     dict(lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.1), (0.2, 0.0)),
    ("adadelta", "ADADELTA", torch.optim.Adadelta, dict(), (0.5, 0.02)),
    ("adadelta_rho_wd", "ADADELTA", torch.optim.Adadelta,
     dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.01), (1.0, 0.0)),
]

FIELDS = ["lr", "weight_decay", "momentum", "dampening", "nesterov", "alpha", "centered",
          "beta1", "beta2", "amsgrad", "eps", "lr_decay", "initial_accumulator_value", "rho"]


def c_opts(group):
    vals = dict(group)
    if "betas" in vals:
        vals["beta1"], vals["beta2"] = vals["betas"]
    out = []
    for f in FIELDS:
        v = vals.get(f)
        if v is None:
            continue
        if isinstance(v, bool):
            out.append(".%s = %s" % (f, "true" if v else "false"))
        else:
            out.append(".%s = %r" % (f, float(v)))
    return "{" + ", ".join(out) + "}"


def c_array(vals):
    return "{" + ", ".join(repr(float(v)) for v in vals) + "}"


def run(ctor, opts, g1):
    x, y = torch.tensor(X), torch.tensor(Y)
    w = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    opt = ctor([{"params": [w]}, {"params": [b], "lr": g1[0], "weight_decay": g1[1]}],
               foreach=False, **opts)
    ws, bs = [], []
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(x @ w + b, y).backward()
        opt.step()
        ws.append(w.detach().flatten().tolist())
        bs.append(b.detach().flatten().tolist())
    return opt.param_groups[0], ws, bs


def lin_grads(w, b):
    """check_optim.c's lin_grads, operation for operation, in Python doubles."""
    wv, bv = w.detach().double().flatten().tolist(), b.detach().double().tolist()
    xs, ys = sum(X, []), sum(Y, [])
    r = [0.0] * 8
    for i in range(4):
        for j in range(2):
            s = bv[j] - ys[i * 2 + j]
            for k in range(3):
                s += xs[i * 3 + k] * wv[k * 2 + j]
            r[i * 2 + j] = s
    dw, db = [0.0] * 6, [0.0] * 2
    for i in range(4):
        for j in range(2):
            for k in range(3):
                dw[k * 2 + j] += xs[i * 3 + k] * r[i * 2 + j] * 0.25
            db[j] += r[i * 2 + j] * 0.25
    return (torch.tensor(dw, dtype=torch.float64).reshape(3, 2).float(),
            torch.tensor(db, dtype=torch.float64).float())


def run_f32(ctor, opts, g1):
    w = torch.tensor(W0, dtype=torch.float32, requires_grad=True)
    b = torch.tensor(B0, dtype=torch.float32, requires_grad=True)
    opt = ctor([{"params": [w]}, {"params": [b], "lr": g1[0], "weight_decay": g1[1]}],
               foreach=False, **opts)
    ws, bs = [], []
    for _ in range(3):
        w.grad, b.grad = lin_grads(w, b)
        opt.step()
        ws.append(w.detach().double().flatten().tolist())
        bs.append(b.detach().double().flatten().tolist())
    return ws, bs


def main_f32():
    print("/* tests/optim/optim_reference_f32.h - GENERATED by tests/optim/gen_reference.py")
    print(" * --float32 with PyTorch %s; do not edit. The cases of optim_reference.h" %
          torch.__version__)
    print(" * (same order) with float32 parameters updated in float32 arithmetic from the")
    print(" * gradients lin_grads computes; W, b after each of three steps. */")
    print("static const struct { const char *name; float w[3][6], b[3][2]; } ref_f32[] = {")
    for name, kind, ctor, opts, g1 in CASES:
        ws, bs = run_f32(ctor, opts, g1)
        f = lambda vals: "{" + ", ".join("%.9gf" % v for v in vals) + "}"
        print('    {"%s", {%s}, {%s}},' % (name, ", ".join(f(v) for v in ws),
                                           ", ".join(f(v) for v in bs)))
    print("};")


def main():
    print("/* tests/optim/optim_reference.h - GENERATED by tests/optim/gen_reference.py")
    print(" * with PyTorch %s; do not edit. Regenerate:" % torch.__version__)
    print(" *   /usr/bin/python3 tests/optim/gen_reference.py > tests/optim/optim_reference.h")
    print(" * x [4,3], y [4,2], W [3,2] (group 0), b [2] (group 1: lr1, wd1);")
    print(" * loss = mean((x W + b - y)^2); W, b after each of three steps. */")
    print("static const double ref_x[12] = %s;" % c_array(sum(X, [])))
    print("static const double ref_y[8] = %s;" % c_array(sum(Y, [])))
    print("static const double ref_w0[6] = %s;" % c_array(sum(W0, [])))
    print("static const double ref_b0[2] = %s;" % c_array(B0))
    print("typedef struct ref_case {\n    const char *name;\n    tg_optim_kind kind;")
    print("    tg_optim_opts g0;\n    double lr1, wd1;\n    double w[3][6], b[3][2];\n} ref_case;")
    print("static const ref_case ref_cases[] = {")
    for name, kind, ctor, opts, g1 in CASES:
        group, ws, bs = run(ctor, opts, g1)
        print('    {"%s", TG_OPTIM_%s,' % (name, kind))
        print("     %s," % c_opts(group))
        print("     %r, %r," % (float(g1[0]), float(g1[1])))
        print("     {%s}," % ", ".join(c_array(v) for v in ws))
        print("     {%s}}," % ", ".join(c_array(v) for v in bs))
    print("};")


if __name__ == "__main__":
    main_f32() if "--float32" in sys.argv[1:] else main()
