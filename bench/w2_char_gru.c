/* bench/w2_char_gru.c - W2 char-GRU (reset-after, PyTorch's nn.GRU convention),
 * issue 6. The model, shapes and GEMM floor are in char_rnn.h (shared with W1).
 *   build-h/bench/w2_char_gru --threads 2 [--verbose] */
#include "char_rnn.h"

int main(int argc, char **argv) { return char_main(argc, argv, &tg_cell_gru); }
