/* tests/ref_cases.h - the reader of the reference files the PyTorch parity
 * tests share (tests/parity/conv2d_reference.txt, tests/nn/parity/rnn_reference.txt,
 * each written by the gen_*_reference.py beside it):
 *
 *   # a comment, to the end of the line
 *   case NAME
 *   WORD ...                       a line of the program's own ("config", "op", ...)
 *   tensor NAME NDIM DIM... VALUE...   (row-major, whitespace-separated)
 *   end
 *
 * and the loop every parity program runs over them: read a case, run it,
 * count the tensors over tolerance, print the total. */
#ifndef TG_REF_CASES_H
#define TG_REF_CASES_H

#include <stdbool.h>
#include <stdio.h>

#include "tapegrad.h"

#define TGT_REF_MAX_TENSORS 64
#define TGT_REF_MAX_DIM 4096   /* a dimension larger than this is a format error */

typedef struct tgt_ref_tensor {
    char name[64];
    tg_tensor *t;   /* caller-owned, freed by tgt_ref_free */
} tgt_ref_tensor;

typedef struct tgt_ref_case {
    char name[64];
    tgt_ref_tensor tensor[TGT_REF_MAX_TENSORS];
    int n;
} tgt_ref_case;

/* A line of the program's own: word is its first word; read the rest from f.
 * Returns false on a format error (an unknown word, a missing value). */
typedef bool (*tgt_ref_field_fn)(FILE *f, const char *word, void *user);
/* Runs one case; returns how many of its tensors were over tolerance. */
typedef int (*tgt_ref_run_fn)(const tgt_ref_case *c, void *user);

/* The next case of f into c, tensors in dtype dt. false at the end of the
 * file or on a format error. */
bool tgt_ref_read(FILE *f, tgt_ref_case *c, tg_dtype dt, tgt_ref_field_fn field, void *user);
/* The case's tensor of that name, or NULL. */
tg_tensor *tgt_ref_find(const tgt_ref_case *c, const char *name);
void tgt_ref_free(tgt_ref_case *c);

/* Reads every case of the file at path and runs it, then prints
 * "N cases, M tensors over tolerance". Returns the exit status: 0 when no
 * tensor was over tolerance and the file held exactly want_cases cases. */
int tgt_ref_main(const char *prog, const char *path, tg_dtype dt, tgt_ref_field_fn field,
                 tgt_ref_run_fn run, void *user, int want_cases);

#endif
