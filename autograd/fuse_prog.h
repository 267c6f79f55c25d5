/* autograd/fuse_prog.h - the program format shared by fuse_compile.c (which
 * writes programs) and fuse_exec.c (which runs them). Private. */
#ifndef TG_FUSE_PROG_H
#define TG_FUSE_PROG_H

#include "fuse.h"

enum { FZ_MAX_SPACES = 8 };

/* Instructions; registers hold one block of a space, -1 means "zeros". */
enum fz_kind {
    FZ_LOAD,     /* dst = block of operand ref through map                       */
    FZ_OP,       /* dst = value ref's op on src[]                                */
    FZ_STORE,    /* value ref's data block = dst                                 */
    FZ_LOADG,    /* dst (=, or += when acc) the gradient block of value ref      */
    FZ_VJP,      /* dst (=, or += when acc) value ref's VJP for input k: src[] its
                    inputs, y its output, dy its adjoint                         */
    FZ_SCATTER,  /* operand ref's gradient, through map, gets dst                */
    FZ_EXPAND    /* dst = the row-constant src[0] repeated along each row         */
};

typedef struct fz_inst {
    uint8_t kind;
    uint8_t k;                        /* FZ_VJP: the input                         */
    uint8_t acc;                      /* FZ_LOADG, FZ_VJP: add into dst            */
    uint8_t copy;                     /* FZ_LOADG: dst must be a private copy      */
    uint8_t narrow;                   /* FZ_LOAD, FZ_OP of a row-constant value: one
                                         TG_VEC of lanes per row, not the row      */
    uint8_t keep;                     /* FZ_LOAD broadcast along the rows (a bias):
                                         its register lives through the space, so
                                         blocks after the first may reuse it       */
    int16_t dst;
    int16_t src[TG_ELTWISE_MAX_IN];
    int16_t y, dy;
    int32_t ref;                      /* value index, or operand index             */
    fz_map map;                       /* FZ_LOAD, FZ_SCATTER                       */
    int32_t slot;                     /* FZ_SCATTER broadcast along rows: where its
                                         per-thread partial sums go (elements)     */
} fz_inst;

/* One loop nest: instructions [first, first + count) run for every block of
 * a rows x cols space. */
typedef struct fz_space {
    int64_t rows, cols;
    int first, count;
    int first_node;                   /* (compiler bookkeeping)                    */
} fz_space;

struct fz_prog {
    int n_regs, n_spaces, n_inst;
    uint32_t write_ok;                /* operands whose fresh gradient one scatter
                                         covers exactly: written, not zeroed       */
    uint32_t scattered;               /* operands that get a gradient at all       */
    int64_t partials;                 /* elements of per-thread partial sums       */
    fz_space space[FZ_MAX_SPACES];
    fz_inst inst[];
};

#endif
