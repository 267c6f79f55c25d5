/* tapegrad/io.h - safetensors files: parameters, optimizer state, training
 * checkpoints.
 *
 * Format (the Hugging Face safetensors layout, readable by PyTorch tools):
 *   8 bytes     little-endian uint64 N, the header length
 *   N bytes     JSON object: name -> {"dtype": "F32", "shape": [2,3],
 *               "data_offsets": [begin, end]}, plus an optional
 *               "__metadata__": {string: string}; padded with spaces
 *   rest        raw little-endian tensor data; offsets count from here
 *
 * Saving is crash-safe: the bytes go to a temporary file in the same folder,
 * which is fsync'ed and renamed over the target, then the folder is fsync'ed.
 * A process killed at any moment leaves the old file or the new one, complete.
 * A killed save may leave its temporary file ".<name>.tmp-XXXXXX" behind (for
 * names over 243 bytes, ".<first 226 bytes>~<hash>.tmp-XXXXXX"); the next
 * save to the same path removes it. A save holds an flock on its temporary
 * file until the rename, so a concurrent save's file is never taken for one.
 *
 * Loading treats the file as untrusted: the header length, the JSON, names
 * and metadata that must be UTF-8 (as the reference implementation requires;
 * the writer refuses others too), every dtype, shape and byte range (inside
 * the file, not overlapping, matching shape x dtype size), duplicate and
 * missing names and shape mismatches with the model are checked before
 * anything is changed; each failure is an error
 * (tg_last_error()) naming the tensor, e.g.
 *   "params_load: ckpt.safetensors: tensor 'fc.weight': shape [3,4] in file, [4,3] in model".
 * A failed load leaves the model, optimizer and schedule untouched.
 *
 * Names: parameters are stored under their registry names, so a parameter
 * file is a PyTorch state_dict. Optimizer, schedule and training state live
 * under names and metadata keys starting with "tapegrad.", which is therefore
 * not allowed as a parameter name prefix. */
#ifndef TAPEGRAD_IO_H
#define TAPEGRAD_IO_H

#include <stdio.h>

#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- opening a file to read ------------------------------------------------
 * Every loader (safetensors, parameters, checkpoints, GloVe, the examples'
 * data) opens its file through these. Only a regular file is opened: a FIFO,
 * a device, a folder or a socket is refused at once (never waited on) with
 * tg_last_error() naming the path, e.g.
 *   "safetensors: /tmp/ckpt: cannot open: not a regular file (a FIFO)".
 * who starts the message (NULL: "open"). */
TG_API int tg_file_open(const char *path, const char *who);     /* read-only fd, or -1  */
TG_API FILE *tg_file_fopen(const char *path, const char *who);  /* "rb" stream, or NULL */

/* ---- reading any safetensors file ---------------------------------------- */
typedef struct tg_safetensors tg_safetensors;

typedef struct tg_st_info {
    const char *name;
    const char *dtype;       /* "F32", "BF16", ... as in the file          */
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t numel;
    size_t nbytes;
    const void *data;        /* raw little-endian bytes, possibly unaligned */
} tg_st_info;

/* Read and validate a whole file (read, not mapped: a file truncated by
 * someone else cannot crash us). NULL and tg_last_error() when invalid. */
TG_API tg_safetensors *tg_safetensors_open(const char *path);
/* Same from bytes in memory (copied). */
TG_API tg_safetensors *tg_safetensors_parse(const void *bytes, size_t len);
TG_API void tg_safetensors_close(tg_safetensors *f);

TG_API int tg_safetensors_count(const tg_safetensors *f);
TG_API int tg_safetensors_find(const tg_safetensors *f, const char *name);   /* index or -1 */
TG_API tg_status tg_safetensors_info(const tg_safetensors *f, int i, tg_st_info *out);
/* New caller-owned tensor holding the named entry converted to dt: F64, F32,
 * F16 and BF16 convert to TG_F32/TG_F64; I32 and I64 (in range) to TG_I32. */
TG_API tg_tensor *tg_safetensors_get(const tg_safetensors *f, const char *name, tg_dtype dt);
/* A "__metadata__" value, NULL if absent. */
TG_API const char *tg_safetensors_meta(const tg_safetensors *f, const char *key);

/* ---- writing --------------------------------------------------------------- */
typedef struct tg_safetensors_writer tg_safetensors_writer;

TG_API tg_safetensors_writer *tg_safetensors_writer_new(void);
TG_API void tg_safetensors_writer_free(tg_safetensors_writer *w);
/* Add a tensor under a unique name. The tensor is read at save time: it must
 * stay alive until then. Written as F32, F64 or I32 like its dtype. */
TG_API tg_status tg_safetensors_writer_add(tg_safetensors_writer *w, const char *name,
                                           const tg_tensor *t);
TG_API tg_status tg_safetensors_writer_meta(tg_safetensors_writer *w, const char *key,
                                            const char *value);
/* Crash-safe save (see above). The writer can be saved again. */
TG_API tg_status tg_safetensors_writer_save(const tg_safetensors_writer *w, const char *path);

/* ---- parameters -------------------------------------------------------------- */
/* Every parameter under its name (metadata "format": "pt"). */
TG_API tg_status tg_params_save(const tg_params *p, const char *path);

typedef struct tg_load_opts {
    bool allow_missing;      /* parameters absent from the file keep their values */
    bool allow_unexpected;   /* file tensors that are no parameter are ignored    */
} tg_load_opts;

/* Strict load: every parameter present with its shape, no other tensor
 * (entries under "tapegrad." are ignored). Float data converts to the
 * parameter's dtype, as PyTorch's load_state_dict copies. */
TG_API tg_status tg_params_load(tg_params *p, const char *path);
TG_API tg_status tg_params_load_ex(tg_params *p, const char *path, const tg_load_opts *o);
/* The same from an opened file. */
TG_API tg_status tg_params_load_from(tg_params *p, const tg_safetensors *f, const tg_load_opts *o);

/* ---- training checkpoints (bit-exact resume) -------------------------------- */
/* What the training loop needs besides parameters and optimizer: the RNG
 * (dropout, shuffling, noise; seeded: the all-zero state, which only ever
 * outputs zeros, is refused when saving and loading) and where it is in the
 * data. */
typedef struct tg_train_state {
    tg_rng rng;
    int64_t epoch;
    int64_t step;
    int64_t data_pos;        /* e.g. the next example index in the epoch */
} tg_train_state;

/* Parameters plus, when given (each may be NULL): the optimizer's groups,
 * hyperparameters, moments and step counts; the schedule's epoch and state;
 * the training state. One crash-safe file. */
TG_API tg_status tg_checkpoint_save(const char *path, const tg_params *p, const tg_optim *o,
                                    const tg_sched *s, const tg_train_state *ts);
/* Restores what is given into existing objects (built the same way: same
 * parameter names and shapes, same optimizer kind and schedule kind). The
 * optimizer takes the file's groups and hyperparameters. A part asked for but
 * absent from the file is an error. */
TG_API tg_status tg_checkpoint_load(const char *path, tg_params *p, tg_optim *o, tg_sched *s,
                                    tg_train_state *ts);
TG_API tg_status tg_checkpoint_load_from(const tg_safetensors *f, tg_params *p, tg_optim *o,
                                         tg_sched *s, tg_train_state *ts);

/* What else a loop may carry from one step to the next, for the _ex variants
 * (NULL, or a NULL member: none). */
typedef struct tg_checkpoint_extra {
    /* Tensors the loop carries between steps without training them, e.g. the
     * recurrent state handed from one truncated-BPTT batch to the next: a
     * resumed run is bit-exact mid-epoch only if it starts from them. Saved
     * under "tapegrad.carry.<name>"; loading wants every one of them, with its
     * shape, and no other. */
    tg_params *carry;
} tg_checkpoint_extra;

TG_API tg_status tg_checkpoint_save_ex(const char *path, const tg_params *p, const tg_optim *o,
                                       const tg_sched *s, const tg_train_state *ts,
                                       const tg_checkpoint_extra *x);
TG_API tg_status tg_checkpoint_load_ex(const char *path, tg_params *p, tg_optim *o, tg_sched *s,
                                       tg_train_state *ts, const tg_checkpoint_extra *x);
TG_API tg_status tg_checkpoint_load_from_ex(const tg_safetensors *f, tg_params *p, tg_optim *o,
                                            tg_sched *s, tg_train_state *ts,
                                            const tg_checkpoint_extra *x);

#ifdef __cplusplus
}
#endif
#endif
