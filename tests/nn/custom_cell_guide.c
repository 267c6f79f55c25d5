/* A minimal gated unit: a new recurrent cell, trained and gradient-checked.
 * (docs/custom-cells.md; the tests compile and run this file.) */
#include <stdio.h>
#include <tapegrad.h>
#include <tapegrad/nn.h>
#include <tapegrad/optim.h>

/* W_f, W_h [C+H, H]; b_f, b_h [H] */
typedef struct mgu { tg_tensor *w_f, *b_f, *w_h, *b_h; } mgu;

static tg_status mgu_init(mgu *c, tg_params *p, int64_t C, int64_t H, tg_rng *rng) {
    c->w_f = tg_params_create(p, "mgu.w_f", TG_F64, 2, (int64_t[]){C + H, H});
    c->b_f = tg_params_create(p, "mgu.b_f", TG_F64, 1, (int64_t[]){H});
    c->w_h = tg_params_create(p, "mgu.w_h", TG_F64, 2, (int64_t[]){C + H, H});
    c->b_h = tg_params_create(p, "mgu.b_h", TG_F64, 1, (int64_t[]){H});
    if (!c->w_f || !c->b_f || !c->w_h || !c->b_h) return tg_last_status();
    tg_init_glorot_uniform(c->w_f, rng);
    return tg_init_glorot_uniform(c->w_h, rng);
}

/* One step: x [B, C], h [B, H] -> h' [B, H] */
static tg_tensor *mgu_step(tg_tape *tp, const mgu *c, tg_tensor *x, tg_tensor *h) {
    /* f = sigmoid([x, h] W_f + b_f) */
    tg_tensor *xh = tg_concat(tp, 2, (tg_tensor *[]){x, h}, 1);
    tg_tensor *f = tg_sigmoid(tp, tg_add(tp, tg_matmul(tp, xh, c->w_f), c->b_f));
    /* h~ = tanh([x, f * h] W_h + b_h) */
    tg_tensor *xfh = tg_concat(tp, 2, (tg_tensor *[]){x, tg_mul(tp, f, h)}, 1);
    tg_tensor *cand = tg_tanh(tp, tg_add(tp, tg_matmul(tp, xfh, c->w_h), c->b_h));
    /* h' = (1 - f) * h + f * h~, written as h + f * (h~ - h) */
    return tg_add(tp, h, tg_mul(tp, f, tg_sub(tp, cand, h)));
}

enum { B = 32, T = 5, C = 1, H = 8 };

/* The cell and a readout y = h_T W_y + b_y, W_y [H, 1], b_y [1]. */
typedef struct model { mgu cell; tg_tensor *w_y, *b_y; } model;

/* xs: T steps of [B, C] -> y [B, 1] */
static tg_tensor *forward(tg_tape *tp, const model *m, tg_tensor *const *xs) {
    tg_tensor *h = tg_tape_tensor(tp, TG_F64, 2, (int64_t[]){B, H});   /* h_0 = 0 */
    for (int t = 0; t < T; t++) h = mgu_step(tp, &m->cell, xs[t], h);
    return tg_add(tp, tg_matmul(tp, h, m->w_y), m->b_y);
}

/* Task: after T steps of random +-1 inputs, output the first one. */
static void make_batch(tg_rng *rng, tg_tensor **xs, tg_tensor *target) {
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) tg_tensor_set(xs[t], b, tg_rng_uniform(rng) < 0.5 ? -1 : 1);
    for (int b = 0; b < B; b++) tg_tensor_set(target, b, tg_tensor_get(xs[0], b));
}

static double train(model *m, tg_params *p, tg_tensor **xs, tg_tensor *target, tg_rng *rng) {
    tg_optim *opt = tg_optim_new(TG_OPTIM_ADAM, p, 0.01);
    tg_tape *tp = tg_tape_new();
    double loss_value = 0;
    for (int step = 0; step < 400; step++) {
        make_batch(rng, xs, target);
        tg_params_zero_grad(p);
        tg_tensor *loss = tg_mse(tp, forward(tp, m, xs), target);
        if (!loss) {
            fprintf(stderr, "%s\n", tg_tape_error(tp));   /* e.g. a shape error, with shapes */
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

/* inputs: x_0 .. x_{T-1}, then w_f, b_f, w_h, b_h, w_y, b_y */
static tg_tensor *checked(tg_tape *tp, tg_tensor *const *in, void *user) {
    (void)user;
    model m = {{in[T], in[T + 1], in[T + 2], in[T + 3]}, in[T + 4], in[T + 5]};
    return forward(tp, &m, in);
}

int main(void) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(1);
    model m;
    if (mgu_init(&m.cell, p, C, H, &rng) != TG_OK) return 1;
    m.w_y = tg_params_create(p, "readout.w", TG_F64, 2, (int64_t[]){H, 1});
    m.b_y = tg_params_create(p, "readout.b", TG_F64, 1, (int64_t[]){1});
    tg_init_glorot_uniform(m.w_y, &rng);
    tg_tensor *xs[T], *target = tg_tensor_new(TG_F64, 2, (int64_t[]){B, 1});
    for (int t = 0; t < T; t++) xs[t] = tg_tensor_new(TG_F64, 2, (int64_t[]){B, C});

    double loss = train(&m, p, xs, target, &rng);

    tg_tensor *in[T + 6];
    for (int t = 0; t < T; t++) in[t] = xs[t];
    tg_tensor *params[6] = {m.cell.w_f, m.cell.b_f, m.cell.w_h, m.cell.b_h, m.w_y, m.b_y};
    for (int i = 0; i < 6; i++) in[T + i] = params[i];
    tg_gradcheck_report r;
    tg_status st = tg_gradcheck(checked, NULL, T + 6, in, NULL, &r);
    printf("final loss %.4f; gradcheck %s: max abs err %.1e over %lld elements\n", loss,
           st == TG_OK && r.passed ? "passed" : "FAILED", r.max_abs_err, (long long)r.checked);

    for (int t = 0; t < T; t++) tg_tensor_free(xs[t]);
    tg_tensor_free(target);
    tg_params_free(p);
    return loss < 0.05 && st == TG_OK && r.passed ? 0 : 1;
}
