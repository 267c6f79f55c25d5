/* tapegrad/nn_layers.h - layers composed from the primitives in ops.h.
 *
 * Nothing here has gradient code: every layer is a few op calls, and its
 * gradient comes from replaying the tape.
 *
 * Layers are small caller-owned structs (usually on the stack or inside a
 * model struct) that point to their parameters; the parameters live in a
 * tg_params registry under dotted names built from a prefix:
 *
 *   tg_params *p = tg_params_new();
 *   tg_rng rng = tg_rng_seeded(42);
 *   tg_linear fc;
 *   tg_linear_init(&fc, p, "classifier.fc", 128, 10, TG_F32, &rng, NULL);
 *   // registers "classifier.fc.weight" [10,128] and "classifier.fc.bias" [10]
 *   tg_tensor *logits = tg_linear_forward(tp, &fc, h);      // [B,128] -> [B,10]
 *
 * Weight layout follows PyTorch: a Linear weight is [out, in] and y = x W^T + b,
 * so weights import from PyTorch without transposes.
 *
 * Errors: *_init and the loaders return a status (message in tg_last_error()
 * or in the report); *_forward returns NULL with the error on the tape,
 * "<layer>: <what>: <shapes>", and returns NULL for a NULL input, so a whole
 * model can be written and checked once. All options structs may be NULL
 * (defaults), and a zero-initialised options struct means the defaults. */
#ifndef TAPEGRAD_NN_LAYERS_H
#define TAPEGRAD_NN_LAYERS_H

#include "ops.h"
#include "params.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- activations ------------------------------------------------------------ */
typedef enum tg_act {
    TG_ACT_DEFAULT = 0,    /* the layer's own default (documented per layer)       */
    TG_ACT_LINEAR,         /* identity                                             */
    TG_ACT_TANH,
    TG_ACT_SIGMOID,
    TG_ACT_HARD_SIGMOID,   /* Keras: clip(0.2 x + 0.5, 0, 1)                       */
    TG_ACT_RELU,
    TG_ACT_SOFTMAX         /* over the last axis                                   */
} tg_act;

/* act(x), same shape. TG_ACT_DEFAULT and TG_ACT_LINEAR return x itself. */
TG_API tg_tensor *tg_activate(tg_tape *tp, tg_tensor *x, tg_act act);
TG_API const char *tg_act_name(tg_act act);

/* ---- initialisers ------------------------------------------------------------
 * All draw from a caller-owned tg_rng, so a seed reproduces them exactly.
 * Fans of a weight of shape [out, in, k...]: fan_in = in*k..., fan_out = out*k...
 * (1-D: both are its length). */
typedef enum tg_init_kind {
    TG_INIT_DEFAULT = 0,      /* the layer's own default                            */
    TG_INIT_ZEROS,
    TG_INIT_ONES,
    TG_INIT_CONSTANT,         /* a                                                  */
    TG_INIT_UNIFORM,          /* U[a, b)                                            */
    TG_INIT_NORMAL,           /* N(mean a, std b)                                   */
    TG_INIT_GLOROT_UNIFORM,   /* U(-l, l), l = gain*sqrt(6/(fan_in+fan_out)); gain a (0: 1) */
    TG_INIT_GLOROT_NORMAL,    /* N(0, gain*sqrt(2/(fan_in+fan_out))); gain a (0: 1) */
    TG_INIT_ORTHOGONAL        /* 2-D [r,c]: orthonormal columns (r >= c) or rows,
                                 times gain a (0: 1); as Keras/PyTorch orthogonal   */
} tg_init_kind;

typedef struct tg_initializer { tg_init_kind kind; double a, b; } tg_initializer;

/* Fill t (float, caller-owned or arena) as described. TG_INIT_DEFAULT is an
 * error here (TG_ERR_ARG): layers resolve it before calling. */
TG_API tg_status tg_init_apply(tg_tensor *t, tg_initializer init, tg_rng *rng);
TG_API tg_status tg_init_zeros(tg_tensor *t);
TG_API tg_status tg_init_ones(tg_tensor *t);
TG_API tg_status tg_init_uniform(tg_tensor *t, double lo, double hi, tg_rng *rng);
TG_API tg_status tg_init_normal(tg_tensor *t, double mean, double std, tg_rng *rng);
TG_API tg_status tg_init_glorot_uniform(tg_tensor *t, tg_rng *rng);
TG_API tg_status tg_init_orthogonal(tg_tensor *t, double gain, tg_rng *rng);

/* "<prefix>.<leaf>" into buf (just leaf when prefix is NULL or ""); returns
 * buf, or NULL when it does not fit. Layers use it to name parameters. */
TG_API char *tg_param_name(char *buf, size_t size, const char *prefix, const char *leaf);

/* ---- Linear (Dense) -------------------------------------------------------------
 * x [..., in] -> act(x W^T + b) [..., out]; W [out, in], b [out]. */
typedef struct tg_linear {
    tg_tensor *weight;   /* [out, in]            "<name>.weight" */
    tg_tensor *bias;     /* [out] or NULL        "<name>.bias"   */
    int64_t in, out;
    tg_act act;
} tg_linear;

typedef struct tg_linear_opts {
    bool no_bias;
    tg_act activation;   /* default linear                          */
    tg_initializer weight_init; /* default Glorot uniform (Keras Dense)     */
    tg_initializer bias_init;   /* default zeros                            */
} tg_linear_opts;

TG_API tg_status tg_linear_init(tg_linear *l, tg_params *p, const char *name, int64_t in,
                                int64_t out, tg_dtype dt, tg_rng *rng, const tg_linear_opts *o);
TG_API tg_tensor *tg_linear_forward(tg_tape *tp, const tg_linear *l, tg_tensor *x);

/* ---- LayerNorm ------------------------------------------------------------------
 * Over the last axis (size C): y = (x - mean) / sqrt(var + eps) * gamma + beta,
 * var the biased variance; composed from mean / sub / mul / rsqrt. */
typedef struct tg_layer_norm {
    tg_tensor *gamma;    /* [C], ones   "<name>.weight" */
    tg_tensor *beta;     /* [C], zeros  "<name>.bias"   */
    int64_t dim;
    double eps;
} tg_layer_norm;

/* eps <= 0 means 1e-5 (PyTorch's default). */
TG_API tg_status tg_layer_norm_init(tg_layer_norm *ln, tg_params *p, const char *name, int64_t dim,
                                    double eps, tg_dtype dt);
TG_API tg_tensor *tg_layer_norm_forward(tg_tape *tp, const tg_layer_norm *ln, tg_tensor *x);
/* The same as a function, with no parameters registered (PyTorch's F.layer_norm
 * over the last axis): x [..., C], weight and bias [C] or NULL, eps finite > 0
 * -> (x - mean) * rsqrt(var + eps) (* weight + bias), [..., C]. */
TG_API tg_tensor *tg_layer_norm_fn(tg_tape *tp, tg_tensor *x, tg_tensor *weight, tg_tensor *bias,
                                   double eps);

/* ---- Embedding --------------------------------------------------------------------
 * idx TG_I32 [S...] -> [S..., C] rows of weight [V, C]. With a padding index,
 * that row starts at zero and stays zero: its lookups are multiplied by a
 * 0/1 mask, so no gradient ever reaches it. Frozen: weight has no gradient. */
typedef struct tg_embedding_layer {
    tg_tensor *weight;     /* [V, C]  "<name>.weight" */
    int64_t num, dim;      /* V, C                    */
    int32_t padding_idx;   /* -1: none                */
    bool frozen;
} tg_embedding_layer;

typedef struct tg_embedding_opts {
    bool has_padding;      /* use padding_idx (0 is a valid padding index) */
    int32_t padding_idx;
    bool freeze;           /* requires_grad off (still registered, for checkpoints) */
    tg_initializer init;          /* default N(0, 1) as PyTorch; Keras uses U(-0.05, 0.05) */
} tg_embedding_opts;

TG_API tg_status tg_embedding_layer_init(tg_embedding_layer *e, tg_params *p, const char *name,
                                         int64_t num, int64_t dim, tg_dtype dt, tg_rng *rng,
                                         const tg_embedding_opts *o);
TG_API tg_tensor *tg_embedding_layer_forward(tg_tape *tp, const tg_embedding_layer *e,
                                             tg_tensor *idx);
/* Freeze (no gradient) or unfreeze the table. */
TG_API void tg_embedding_layer_freeze(tg_embedding_layer *e, bool frozen);

/* ---- vocabulary ----------------------------------------------------------------------
 * Words to ids. A new vocabulary holds the four special tokens at fixed ids;
 * lookups of unknown words return TG_TOKEN_UNK. Caller-owned. */
enum { TG_TOKEN_PAD = 0, TG_TOKEN_UNK = 1, TG_TOKEN_GO = 2, TG_TOKEN_EOS = 3 };
typedef struct tg_vocab tg_vocab;

TG_API tg_vocab *tg_vocab_new(void);   /* "<pad>", "<unk>", "<go>", "<eos>" = ids 0..3 */
TG_API void tg_vocab_free(tg_vocab *v);
TG_API int32_t tg_vocab_add(tg_vocab *v, const char *word);       /* its id; -1 on error */
TG_API int32_t tg_vocab_id(const tg_vocab *v, const char *word);  /* TG_TOKEN_UNK if absent */
TG_API bool tg_vocab_contains(const tg_vocab *v, const char *word);
TG_API int32_t tg_vocab_size(const tg_vocab *v);
TG_API const char *tg_vocab_word(const tg_vocab *v, int32_t id);  /* NULL if out of range */

/* ---- pretrained vectors (GloVe text format) ----------------------------------------
 * One word per line followed by exactly C numbers, separated by spaces.
 * Rows of words in the vocabulary get the file's vector; with add_words,
 * file words not yet in the vocabulary are added while rows remain (vocab
 * size <= V). The UNK row gets the mean of all vectors read; the padding row
 * stays zero; vocabulary words the file lacks keep their initial values and
 * are counted in `missing`. A malformed line stops the load with
 * TG_ERR_FORMAT and a message naming the file and line; rows already copied
 * stay copied. A missing file is TG_ERR_IO. Never crashes on bad input. */
typedef struct tg_glove_opts {
    bool add_words;
} tg_glove_opts;

typedef struct tg_glove_report {
    int64_t lines;         /* lines read                                   */
    int64_t loaded;        /* vectors copied into rows                     */
    int64_t skipped;       /* file words not in (and not added to) the vocab */
    int64_t missing;       /* vocabulary words without a vector            */
    int64_t error_line;    /* 1-based line of the error, 0 if none         */
    char message[320];     /* "" or e.g. "glove: vec.txt:7: expected 50 numbers after 'cat', found 49" */
} tg_glove_report;

TG_API tg_status tg_embedding_layer_load_glove(tg_embedding_layer *e, tg_vocab *vocab,
                                               const char *path, const tg_glove_opts *o,
                                               tg_glove_report *report);

/* ---- dropout -------------------------------------------------------------------------
 * Dropout is the primitive tg_dropout (ops.h). SpatialDropout1D drops whole
 * channels: x [B, T, C], one keep/drop draw per (b, c) shared by all T, kept
 * channels scaled by 1/(1-p). Identity when not training or p == 0. */
TG_API tg_tensor *tg_spatial_dropout1d(tg_tape *tp, tg_tensor *x, double p, tg_rng *rng);

/* ---- Conv1D and pooling ---------------------------------------------------------------
 * x [B, Cin, L] (or [B, L, Cin] with channels_last, the Keras layout; the
 * output then is [B, Lout, Cout] too) -> act(conv1d(x, W) + b).
 * W [Cout, Cin, K] "<name>.weight", b [Cout] "<name>.bias". */
typedef struct tg_conv1d_layer {
    tg_tensor *weight, *bias;
    int64_t in, out, kernel;
    tg_conv1d_opts conv;
    bool channels_last;
    tg_act act;
} tg_conv1d_layer;

typedef struct tg_conv1d_layer_opts {
    tg_conv1d_opts conv;     /* stride, padding, dilation */
    bool channels_last;
    bool no_bias;
    tg_act activation;       /* default linear            */
    tg_initializer weight_init;     /* default Glorot uniform    */
    tg_initializer bias_init;       /* default zeros             */
} tg_conv1d_layer_opts;

TG_API tg_status tg_conv1d_layer_init(tg_conv1d_layer *c, tg_params *p, const char *name,
                                      int64_t in, int64_t out, int64_t kernel, tg_dtype dt,
                                      tg_rng *rng, const tg_conv1d_layer_opts *o);
TG_API tg_tensor *tg_conv1d_layer_forward(tg_tape *tp, const tg_conv1d_layer *c, tg_tensor *x);
/* MaxPool1D is the primitive tg_max_pool1d. GlobalMaxPool1D: [B, C, L] -> [B, C]. */
TG_API tg_tensor *tg_global_max_pool1d(tg_tape *tp, tg_tensor *x);

#ifdef __cplusplus
}
#endif
#include "call_site.h"   /* file:line of each call (anomaly mode, profiler) */
#endif
