/* tapegrad/nn.h - the layer library, composed from the primitives in ops.h.
 *
 * Parameter names are the state_dict keys of the equivalent PyTorch module.
 *
 * Defaults, and whose they are:
 *   Keras    Linear, Conv1D, attention and recurrent kernels Glorot uniform,
 *            recurrent weights orthogonal, biases zero; recurrent layers batch
 *            first [B, T, C], the last output only, unit_forget_bias on,
 *            dropout on each layer's input and on h (one mask per sequence).
 *   PyTorch  Embedding N(0, 1); LayerNorm eps 1e-5; bidirectional outputs
 *            concatenated; multi-head attention and transformer blocks laid
 *            out as nn.MultiheadAttention / nn.TransformerEncoderLayer
 *            (post-norm, relu, dropout after the activation and each sublayer);
 *            GRU reset-after (tg_cell_gru).
 *   tg_rnn_opts_torch(cell, C, H) gives a recurrent layer all of PyTorch's in
 *   one call: time major, every step's output, U(-1/sqrt(H), 1/sqrt(H)) for
 *   every weight and bias, no unit_forget_bias (and layer_dropout for
 *   PyTorch's dropout=).
 *   For PyTorch's Linear / Conv1d initialisation give weight_init and
 *   bias_init {TG_INIT_UNIFORM, -1/sqrt(fan_in), 1/sqrt(fan_in)}.
 *
 * nn_layers.h     Linear, LayerNorm, Embedding (+ GloVe, vocabulary), dropout,
 *                 Conv1D / pooling, activations, initialisers, parameter names
 * nn_cell.h       writing a recurrent cell: the descriptor every cell is, and
 *                 the built-in ones: Elman, Jordan, LSTM (+ peephole,
 *                 prototype), GRU (both conventions)
 * nn_rnn.h        layers over any cell: stacked, bidirectional, masked,
 *                 Keras or PyTorch defaults; PyTorch import and export
 * nn_attention.h  additive / dot / general / scaled dot-product and multi-head
 *                 attention, positional encoding, transformer blocks
 * nn_seq2seq.h    encoder-decoder with teacher forcing, greedy and beam search
 * nn_conv2d.h     Conv2D (PyTorch's nn.Conv2d names and initialisation) */
#ifndef TAPEGRAD_NN_H
#define TAPEGRAD_NN_H

#include "nn_layers.h"
#include "nn_cell.h"
#include "nn_rnn.h"
#include "nn_attention.h"
#include "nn_seq2seq.h"
#include "nn_conv2d.h"

#endif
