#!/usr/bin/python3
"""The PyTorch side of examples/sentiment: the same five models on the same
deduplicated 80/20 split, with the same hyper-parameters and initialisers.

    /usr/bin/python3 examples/sentiment_torch.py --model lstm --split-seeds 1 2 3 4 5

The split is rebuilt exactly as sentiment.c builds it: the same tokenizer
(lower-cased runs of letters, digits, apostrophes and non-ASCII bytes; a run
of one other visible character is a token), duplicate token sequences merged
(a sentence with both labels dropped), the shuffle by tapegrad's generator
(xoshiro256** seeded through splitmix64) with the split seed, the last 20%
for validation, the 2000 most frequent training words (ties alphabetical),
40 tokens padded or cut at the front. Only the training randomness (weights,
shuffling, dropout masks) comes from PyTorch's generator.

The recurrent layers are written out step by step, because the C example
uses Keras' dropout: one mask per sequence on each layer's input and on
h_{t-1} (recurrent dropout), which nn.LSTM does not offer. Initialisers as
tapegrad's defaults: Glorot uniform kernels, orthogonal recurrent weights,
zero biases with the forget gate's input bias at 1, embedding U(-0.05, 0.05)
with the padding row zero, Glorot dense and conv weights.

Prints one line per run, "validation accuracy (MODEL) split SEED: ACC".
"""
import argparse

import torch
import torch.nn as nn

MASK = (1 << 64) - 1
PAD, UNK, FIRST_WORD = 0, 1, 4
SPACES = b" \t\n\v\f\r"


# ---- the split, as examples/sentiment.c makes it -------------------------------------------
class Xoshiro:
    """tapegrad's tg_rng: xoshiro256** seeded through splitmix64."""

    def __init__(self, seed):
        self.s = []
        x = seed & MASK
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            self.s.append(z ^ (z >> 31))

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & MASK
        result = (rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result


def is_word(c):
    return chr(c).isascii() and chr(c).isalnum() or c == ord("'") or c >= 0x80


def tokenize(text):
    toks, i = [], 0
    while i < len(text):
        c = text[i]
        if c in SPACES:
            i += 1
            continue
        j = i + 1
        if is_word(c):
            while j < len(text) and is_word(text[j]):
                j += 1
            toks.append(text[i:j].lower())
        else:
            while j < len(text) and text[j] == c:
                j += 1
            toks.append(text[i:j])
        i = j
    return b" ".join(toks)


def load(path):
    """(key, label, line) of the distinct sentences, in file order."""
    rows = []
    for n, line in enumerate((l for l in open(path, "rb").read().split(b"\n") if l), 1):
        line = line[:-1] if line.endswith(b"\r") else line
        if line:
            rows.append((tokenize(line[2:]), line[0] - ord("0"), n))
    rows.sort()
    kept, i = [], 0
    while i < len(rows):
        j = i
        while j < len(rows) and rows[j][0] == rows[i][0]:
            j += 1
        if all(r[1] == rows[i][1] for r in rows[i:j]):
            kept.append(rows[i])
        i = j
    return sorted(kept, key=lambda r: r[2])


def tokens(key):
    return [t[:255] for t in key.split(b" ")] if key else []


def split(sentences, seed, max_words, T):
    s = list(sentences)
    rng = Xoshiro(seed)
    for i in range(len(s) - 1, 0, -1):
        j = rng.next() % (i + 1)
        s[i], s[j] = s[j], s[i]
    n_val = (len(s) + 4) // 5
    train, val = s[:len(s) - n_val], s[len(s) - n_val:]
    count = {}
    for key, _, _ in train:
        for t in tokens(key):
            count[t] = count.get(t, 0) + 1
    words = sorted(count, key=lambda w: (-count[w], w))[:max_words]
    vocab = {w: FIRST_WORD + i for i, w in enumerate(words)}

    def encode(part):
        ids = torch.zeros(len(part), T, dtype=torch.long)
        for r, (key, _, _) in enumerate(part):
            seq = [vocab.get(t, UNK) for t in tokens(key)][-T:]
            if seq:
                ids[r, T - len(seq):] = torch.tensor(seq)
        return ids, torch.tensor([float(p[1]) for p in part])

    return encode(train), encode(val), FIRST_WORD + len(words)


# ---- models ----------------------------------------------------------------------------------
def keep_mask(shape, p, like):
    return torch.bernoulli(torch.full(shape, 1 - p, dtype=like.dtype)) / (1 - p)


class KerasLSTM(nn.Module):
    """One direction of tapegrad's LSTM layer: gates i, f, g, o; Keras dropout."""

    def __init__(self, C, H, dropout, recurrent_dropout, reverse=False):
        super().__init__()
        self.H, self.p, self.rp, self.reverse = H, dropout, recurrent_dropout, reverse
        self.weight_ih = nn.Parameter(nn.init.xavier_uniform_(torch.empty(4 * H, C)))
        self.weight_hh = nn.Parameter(nn.init.orthogonal_(torch.empty(4 * H, H)))
        self.bias_ih = nn.Parameter(torch.zeros(4 * H))
        self.bias_hh = nn.Parameter(torch.zeros(4 * H))
        with torch.no_grad():
            self.bias_ih[H:2 * H] = 1   # unit forget bias

    def forward(self, x, sequences=False):   # x [B, T, C] -> [B, T, H] or [B, H]
        B, T, _ = x.shape
        if self.training and self.p:
            x = x * keep_mask((B, 1, x.shape[2]), self.p, x)
        proj = x @ self.weight_ih.T + self.bias_ih + self.bias_hh
        rec = keep_mask((B, self.H), self.rp, x) if self.training and self.rp else None
        h = c = x.new_zeros(B, self.H)
        outs = []
        for t in (range(T - 1, -1, -1) if self.reverse else range(T)):
            g = proj[:, t] + (h if rec is None else h * rec) @ self.weight_hh.T
            i, f, gg, o = g.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        if not sequences:
            return h
        return torch.stack(outs[::-1] if self.reverse else outs, 1)


def glorot(layer):
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class Model(nn.Module):
    def __init__(self, kind, V, a):
        super().__init__()
        self.kind, self.p = kind, a.dropout
        self.embedding = nn.Embedding(V, a.embed, padding_idx=PAD)
        with torch.no_grad():
            self.embedding.weight.uniform_(-0.05, 0.05)
            self.embedding.weight[PAD] = 0
        E, H, p = a.embed, a.hidden, a.dropout
        feat = H
        if kind in ("lstm", "bilstm"):
            self.rnn = nn.ModuleList([KerasLSTM(E, H, p, p)])
            if kind == "bilstm":
                self.rnn.append(KerasLSTM(E, H, p, p, reverse=True))
                feat = 2 * H
        elif kind == "stacked":
            self.rnn = nn.ModuleList([KerasLSTM(E, H, p, p), KerasLSTM(H, H, p, p)])
        elif kind == "cnn":
            self.conv = glorot(nn.Conv1d(E, a.filters, 3))
            self.spatial = nn.Dropout1d(p)
            feat = a.filters
        else:   # cnn-lstm
            self.conv = glorot(nn.Conv1d(E, H, 5))
            self.rnn = nn.ModuleList([KerasLSTM(H, H, 0, 0)])
        self.out = glorot(nn.Linear(feat, 1))

    def forward(self, ids):   # [B, T] -> logits [B]
        e = self.embedding(ids)   # [B, T, E]
        if self.kind == "lstm":
            h = self.rnn[0](e)
        elif self.kind == "bilstm":
            h = torch.cat([self.rnn[0](e), self.rnn[1](e)], 1)
        elif self.kind == "stacked":
            h = self.rnn[1](self.rnn[0](e, sequences=True))
        elif self.kind == "cnn":
            x = self.spatial(e.transpose(1, 2))
            h = torch.relu(self.conv(x)).amax(2)
        else:
            x = nn.functional.dropout(e, self.p, self.training).transpose(1, 2)
            c = nn.functional.max_pool1d(torch.relu(self.conv(x)), 4, 4)
            h = self.rnn[0](c.transpose(1, 2))
        return self.out(h).squeeze(1)


def run(kind, data, a):
    (xt, yt), (xv, yv), V = data
    torch.manual_seed(a.seed)
    m = Model(kind, V, a)
    opt = torch.optim.Adam(m.parameters(), lr=a.lr)
    for _ in range(a.epochs):
        m.train()
        order = torch.randperm(len(xt))
        for first in range(0, len(xt), a.batch):
            idx = order[first:first + a.batch]
            loss = nn.functional.binary_cross_entropy_with_logits(m(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    m.eval()
    with torch.no_grad():
        return ((m(xv) > 0).float() == yv).float().mean().item()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default="../shared/data/umich-sentiment-train.tsv")
    p.add_argument("--model", nargs="+", default=["lstm"],
                   choices=["lstm", "bilstm", "stacked", "cnn", "cnn-lstm"])
    p.add_argument("--split-seeds", type=int, nargs="+", default=[42])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--embed", type=int, default=128)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--filters", type=int, default=256)
    p.add_argument("--vocab", type=int, default=2000)
    p.add_argument("--maxlen", type=int, default=40)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    sentences = load(a.data)
    for s in a.split_seeds:
        data = split(sentences, s, a.vocab, a.maxlen)
        for kind in a.model:
            print("validation accuracy (%s) split %d: %.4f" % (kind, s, run(kind, data, a)), flush=True)


if __name__ == "__main__":
    main()
