/* A minimal gated unit: a new recurrent cell, run as a 2-layer bidirectional
 * layer over padded batches of different lengths, trained and gradient-checked.
 * (docs/custom-cells.md; the tests compile and run this file.) */
#include <math.h>
#include <stdio.h>
#include <tapegrad.h>

/* Parameters, in the order describe lists them */
enum { W_IH, W_HH, BIAS };

static tg_status mgu_describe(const tg_cell_cfg *cfg, tg_cell_layout *l) {
    int64_t C = cfg->input_size, H = cfg->hidden_size, G = 2 * H;
    tg_status st = tg_cell_layout_state(l, "h", H);   /* one state, also the output */
    if (st == TG_OK)   /* rows f, n: [W_fx; W_nx] [2H, C] */
        st = tg_cell_layout_param(l, "weight_ih", TG_PARAM_KERNEL, 2, (int64_t[]){G, C});
    if (st == TG_OK)   /* [W_fh; W_nh] [2H, H] */
        st = tg_cell_layout_param(l, "weight_hh", TG_PARAM_RECURRENT, 2, (int64_t[]){G, H});
    if (st == TG_OK)   /* [b_f; b_n] [2H] */
        st = tg_cell_layout_param(l, "bias", TG_PARAM_BIAS, 1, &G);
    return st;
}

/* x [T*B, C], every step at once -> x W_ih^T + b [T*B, 2H] (one GEMM);
 * the recurrent weight is split once per sequence, not once per step */
static tg_tensor *mgu_prepare(tg_cell_run *run, tg_tensor *x) {
    tg_tape *tp = run->tp;
    int64_t H = run->cfg->hidden_size;
    run->prep[0] = tg_slice(tp, run->param[W_HH], 0, 0, H);       /* W_fh [H, H] */
    run->prep[1] = tg_slice(tp, run->param[W_HH], 0, H, 2 * H);   /* W_nh [H, H] */
    tg_tensor *xw = tg_matmul_ex(tp, x, run->param[W_IH], &(tg_matmul_opts){.trans_b = true});
    return tg_add(tp, xw, run->param[BIAS]);
}

/* One step: in [B, 2H] (this step's rows of prepare's result), h [B, H] -> h' */
static void mgu_step(const tg_cell_run *run, tg_tensor *in, tg_tensor *const *prev,
                     tg_tensor *h_rec, tg_tensor **next) {
    tg_tape *tp = run->tp;
    int64_t H = run->cfg->hidden_size;
    tg_matmul_opts tb = {.trans_b = true};
    /* f = sigmoid(x W_fx^T + h W_fh^T + b_f) */
    tg_tensor *f = tg_sigmoid(tp, tg_add(tp, tg_gate_cols(tp, in, H, 0, 1),
                                         tg_matmul_ex(tp, h_rec, run->prep[0], &tb)));
    /* n = tanh(x W_nx^T + (f * h) W_nh^T + b_n) */
    tg_tensor *fh = tg_matmul_ex(tp, tg_mul(tp, f, h_rec), run->prep[1], &tb);
    tg_tensor *n = tg_tanh(tp, tg_add(tp, tg_gate_cols(tp, in, H, 1, 1), fh));
    /* h' = (1 - f) * h + f * n */
    next[0] = tg_add(tp, tg_mul(tp, tg_affine(tp, f, -1, 1), prev[0]), tg_mul(tp, f, n));
}

static const tg_cell mgu = {.name = "mgu", .describe = mgu_describe, .prepare = mgu_prepare,
                            .step = mgu_step};

enum { B = 32, T = 6, C = 1, H = 8 };

/* A 2-layer bidirectional MGU and a readout of the last layer's two final
 * states: y = [h_fwd, h_bwd] W_y^T + b_y [B, 1]. */
typedef struct model { tg_rnn rnn; tg_linear readout; } model;

static tg_status model_init(model *m, tg_params *p, tg_rng *rng) {
    tg_rnn_opts o = tg_rnn_opts_default(&mgu, C, H);
    o.num_layers = 2;
    o.bidirectional = true;
    tg_status st = tg_rnn_init(&m->rnn, p, "mgu", &o, TG_F64, rng);
    return st != TG_OK ? st : tg_linear_init(&m->readout, p, "readout", 2 * H, 1, TG_F64, rng, NULL);
}

/* The batch: x [B, T, C] padded after each sequence's length, and its lengths. */
typedef struct batch { tg_tensor *x, *target; int64_t lengths[B]; } batch;

/* x [B, T, C] -> y [B, 1] */
static tg_tensor *forward(tg_tape *tp, const model *m, const batch *b) {
    tg_rnn_call call = {.lengths = b->lengths};
    tg_tensor *h = tg_rnn_forward(tp, &m->rnn, b->x, &call, NULL, 0);   /* [B, 2H] */
    return tg_linear_forward(tp, &m->readout, h);
}

/* Task: sequences of 1 to T random +-1 values; the target is their sum / 4.
 * The padding is NaN on purpose: the layer never reads it. */
static void make_batch(tg_rng *rng, batch *b) {
    for (int i = 0; i < B; i++) {
        b->lengths[i] = 1 + (int64_t)(tg_rng_next(rng) % T);
        double sum = 0;
        for (int t = 0; t < T; t++) {
            double v = tg_rng_uniform(rng) < 0.5 ? -1 : 1;
            if (t < b->lengths[i]) sum += v;
            tg_tensor_set(b->x, i * T + t, t < b->lengths[i] ? v : NAN);
        }
        tg_tensor_set(b->target, i, sum / 4);
    }
}

static double train(model *m, tg_params *p, batch *b, tg_rng *rng) {
    tg_optim *opt = tg_optim_new(TG_OPTIM_ADAM, p, 0.01);
    tg_tape *tp = tg_tape_new();
    double loss_value = 0;
    for (int step = 0; step < 300; step++) {
        make_batch(rng, b);
        tg_params_zero_grad(p);
        tg_tensor *loss = tg_mse(tp, forward(tp, m, b), b->target);
        if (!loss) {   /* the first error, with shapes and where it happened */
            fprintf(stderr, "%s\n", tg_tape_error(tp));
            break;
        }
        loss_value = tg_tensor_item(loss);
        tg_backward(tp, loss);
        tg_optim_step(opt);
        tg_tape_reset(tp);   /* keeps the memory: the next step allocates nothing */
        if (step % 100 == 0) printf("step %3d  loss %.4f\n", step, loss_value);
    }
    tg_tape_free(tp);
    tg_optim_free(opt);
    return loss_value;
}

/* What the check differentiates: the model's output on the batch in user. */
typedef struct checked { model *m; batch *b; } checked;

static tg_tensor *checked_forward(tg_tape *tp, void *user) {
    checked *c = user;
    return forward(tp, c->m, c->b);
}

int main(void) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(1);
    model m;
    batch b = {tg_tensor_new(TG_F64, 3, (int64_t[]){B, T, C}),
               tg_tensor_new(TG_F64, 2, (int64_t[]){B, 1}), {0}};
    if (model_init(&m, p, &rng) != TG_OK) {
        fprintf(stderr, "%s\n", tg_last_error());
        return 1;
    }
    double loss = train(&m, p, &b, &rng);

    /* every parameter of the registry against central differences, in float64 */
    tg_gradcheck_report r;
    tg_status st = tg_gradcheck_params(p, checked_forward, &(checked){&m, &b}, 1, &b.x, NULL, &r);
    printf("final loss %.4f; gradcheck %s: max abs err %.1e over %lld elements\n", loss,
           st == TG_OK && r.passed ? "passed" : "FAILED", r.max_abs_err, (long long)r.checked);
    if (st != TG_OK || !r.passed) printf("%s\n", r.message);   /* which parameter, which element */

    tg_tensor_free(b.x);
    tg_tensor_free(b.target);
    tg_rnn_free(&m.rnn);
    tg_params_free(p);
    return loss < 0.05 && st == TG_OK && r.passed ? 0 : 1;
}
