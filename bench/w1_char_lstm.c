/* bench/w1_char_lstm.c - W1 char-LSTM (and W6: --seq T --batch B), issue 6.
 * The model, shapes and GEMM floor are in char_rnn.h (shared with W2).
 *   build-h/bench/w1_char_lstm --threads 2 [--seq 256 --batch 32] [--verbose] */
#include "char_rnn.h"

int main(int argc, char **argv) { return char_main(argc, argv, &tg_cell_lstm); }
