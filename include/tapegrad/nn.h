/* tapegrad/nn.h - the layer library, composed from the primitives in ops.h.
 *
 * nn_layers.h     Linear, LayerNorm, Embedding (+ GloVe, vocabulary), dropout,
 *                 Conv1D / pooling, activations, initialisers, parameter names
 * nn_rnn.h        Elman, Jordan, LSTM (+ peephole, prototype), GRU (both
 *                 conventions); stacked, bidirectional, masked; PyTorch import
 * nn_attention.h  additive / dot / general / scaled dot-product and multi-head
 *                 attention, positional encoding, transformer blocks
 * nn_seq2seq.h    encoder-decoder with teacher forcing, greedy and beam search
 * nn_conv2d.h     Conv2D (PyTorch's nn.Conv2d names and initialisation) */
#ifndef TAPEGRAD_NN_H
#define TAPEGRAD_NN_H

#include "nn_layers.h"
#include "nn_rnn.h"
#include "nn_attention.h"
#include "nn_seq2seq.h"
#include "nn_conv2d.h"

#endif
