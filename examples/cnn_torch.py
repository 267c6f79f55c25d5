#!/usr/bin/python3
"""The PyTorch side of examples/cnn: the same CNN on Fashion-MNIST.

    /usr/bin/python3 examples/cnn_torch.py --bench 50      # ms per batch, one thread
    /usr/bin/python3 examples/cnn_torch.py --epochs 12     # train and test, as examples/cnn

Model (as examples/cnn.c): conv3x3(1->32, pad 1) relu maxpool2, conv3x3(32->64,
pad 1) relu maxpool2, flatten, dropout, dense 128 relu, dropout, dense 10;
cross-entropy, Adam with the learning rate cosine-decayed to lr/20 over the
run. --bench times training steps (forward, backward, Adam) after 3 warm-up
steps on one thread and prints the milliseconds per batch, wall and process
CPU time, in the same words as examples/cnn --bench.
"""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn as nn

DATA = "/usr/share/datasets/fashion-mnist"
WARMUP = 3


def load(folder, prefix):
    with gzip.open("%s/%s-images-idx3-ubyte.gz" % (folder, prefix)) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open("%s/%s-labels-idx1-ubyte.gz" % (folder, prefix)) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.from_numpy(x.astype(np.float32) / 255), torch.from_numpy(y.astype(np.int64))


def model(a):
    return nn.Sequential(
        nn.Conv2d(1, a.filters1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(a.filters1, a.filters2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(a.dropout),
        nn.Linear(a.filters2 * 49, a.hidden), nn.ReLU(), nn.Dropout(a.dropout),
        nn.Linear(a.hidden, 10))


def step(net, opt, x, y):
    opt.zero_grad()
    loss = nn.functional.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def bench(a, net, opt, x, y):
    n = len(x) - a.batch + 1
    for s in range(WARMUP + a.bench):
        if s == WARMUP:
            start, cpu = time.perf_counter(), time.process_time()
        i = (s * a.batch) % n
        loss = step(net, opt, x[i:i + a.batch], y[i:i + a.batch])
    ms = 1e3 * (time.perf_counter() - start) / a.bench
    cpu_ms = 1e3 * (time.process_time() - cpu) / a.bench
    print("pytorch: %.2f ms per batch of %d (training step: forward, backward, Adam), %.2f ms CPU, "
          "%d steps, loss %.4f" % (ms, a.batch, cpu_ms, a.bench, loss))


def train(a, net, opt, x, y):
    xt, yt = load(a.data, "t10k")
    per_epoch = len(x) // a.batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs * per_epoch, a.lr / 20)
    for e in range(a.epochs):
        net.train()
        order = torch.randperm(len(x))
        total = 0.0
        for s in range(per_epoch):
            idx = order[s * a.batch:(s + 1) * a.batch]
            total += step(net, opt, x[idx], y[idx])
            sched.step()
        net.eval()
        with torch.no_grad():
            pred = torch.cat([net(xt[i:i + 250]).argmax(1) for i in range(0, len(xt), 250)])
        print("epoch %d  train loss %.4f  test accuracy %.4f"
              % (e + 1, total / per_epoch, (pred == yt).float().mean().item()), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default=DATA)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--filters1", type=int, default=32)
    p.add_argument("--filters2", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--bench", type=int, default=0, help="only time this many training steps")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    x, y = load(a.data, "train")
    net = model(a)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    (bench if a.bench else train)(a, net, opt, x, y)


if __name__ == "__main__":
    main()
