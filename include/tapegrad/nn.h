/* tapegrad/nn.h - the layer library, composed from the primitives in ops.h.
 *
 * Parameter names are the state_dict keys of the equivalent PyTorch module.
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
 * nn_seq2seq.h    encoder-decoder with teacher forcing, greedy and beam search */
#ifndef TAPEGRAD_NN_H
#define TAPEGRAD_NN_H

#include "nn_layers.h"
#include "nn_cell.h"
#include "nn_rnn.h"
#include "nn_attention.h"
#include "nn_seq2seq.h"

#endif
