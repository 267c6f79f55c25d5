// tests/nn/gtest_gradient_penalty.cpp - training an LSTM with a gradient
// penalty: loss = mse(head(lstm(x)), target) + lambda * |d mse / d x|^2, the
// input gradient taken with tg_grad(create_graph) so the penalty's own
// gradient reaches the weights (a mixed second derivative). Checks that
// (1) d penalty / d weights matches central differences of the penalty, and
// (2) training with the penalty ends with a smaller |d mse / d x| than the
// same training without it, and smaller than at the start.
#include <gtest/gtest.h>

#include <cmath>

extern "C" {
#include "tapegrad.h"
#include "tapegrad/nn.h"
}

namespace {

constexpr int64_t B = 16, T = 5, C = 3, H = 6;

struct Model {
    tg_params *p = nullptr;
    tg_rnn rnn = {};
    tg_linear head = {};
    tg_tensor *x = nullptr, *target = nullptr;
};

void build(Model *m, tg_dtype dt) {
    tg_rng rng = tg_rng_seeded(21);
    m->p = tg_params_new();
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_lstm, C, H);
    ASSERT_EQ(tg_rnn_init(&m->rnn, m->p, "lstm", &o, dt, &rng), TG_OK) << tg_last_error();
    ASSERT_EQ(tg_linear_init(&m->head, m->p, "head", H, 1, dt, &rng, nullptr), TG_OK);
    int64_t xs[3] = {B, T, C}, ts[2] = {B, 1};
    m->x = tg_tensor_new(dt, 3, xs);
    m->target = tg_tensor_new(dt, 2, ts);
    for (int64_t i = 0; i < tg_tensor_numel(m->x); i++) tg_tensor_set(m->x, i, 2 * tg_rng_uniform(&rng) - 1);
    for (int64_t b = 0; b < B; b++) tg_tensor_set(m->target, b, std::sin(3.0 * (double)b));
    tg_tensor_set_requires_grad(m->x, true);
}

void destroy(Model *m) {
    tg_rnn_free(&m->rnn);
    tg_params_free(m->p);
    tg_tensor_free(m->x);
    tg_tensor_free(m->target);
}

// The fit term, the squared norm of its input gradient (recorded), and
// their sum with weight lambda, all on tp.
struct Terms {
    tg_tensor *fit, *penalty, *total;
};

Terms terms(tg_tape *tp, Model *m, double lambda) {
    tg_tensor *h = tg_rnn_forward(tp, &m->rnn, m->x, nullptr, nullptr, 0);   // [B, H]
    tg_tensor *fit = tg_mse(tp, tg_linear_forward(tp, &m->head, h), m->target);
    tg_tensor *gx = nullptr;
    tg_grad_opts rec = {true};
    EXPECT_EQ(tg_grad(tp, fit, nullptr, 1, &m->x, &gx, &rec), TG_OK) << tg_tape_error(tp);
    tg_tensor *pen = tg_sum(tp, tg_mul(tp, gx, gx));
    return {fit, pen, tg_add(tp, fit, tg_scale(tp, pen, lambda))};
}

double penalty_value(Model *m) {
    tg_tape *tp = tg_tape_new();
    double v = tg_tensor_item(terms(tp, m, 0).penalty);
    tg_tape_free(tp);
    return v;
}

TEST(GradientPenalty, PenaltyGradientMatchesFiniteDifferences) {
    Model m;
    build(&m, TG_F64);
    tg_tape *tp = tg_tape_new();
    tg_params_zero_grad(m.p);
    ASSERT_EQ(tg_backward(tp, terms(tp, &m, 1.0).penalty), TG_OK) << tg_tape_error(tp);
    int checked = 0;
    double worst = 0, eps = 1e-6;
    for (int i = 0; i < tg_params_count(m.p); i++) {
        tg_tensor *w = tg_params_at(m.p, i);
        for (int64_t j = 0; j < tg_tensor_numel(w); j += 7, checked++) {
            double keep = tg_tensor_get(w, j);
            tg_tensor_set(w, j, keep + eps);
            double up = penalty_value(&m);
            tg_tensor_set(w, j, keep - eps);
            double down = penalty_value(&m);
            tg_tensor_set(w, j, keep);
            double num = (up - down) / (2 * eps), ana = tg_tensor_grad_get(w, j);
            double err = std::fabs(ana - num) / (1e-6 + std::fabs(num));
            if (!(err <= worst)) worst = err;   // NaN counts as the worst
        }
    }
    tg_tape_free(tp);
    destroy(&m);
    EXPECT_GT(checked, 20);
    EXPECT_TRUE(std::isfinite(worst) && worst < 1e-5) << "worst relative error " << worst;
}

// Adam, 60 steps, from the same start; returns |d fit / d x|^2 at the end.
double train(double lambda, double *start) {
    Model m;
    build(&m, TG_F32);
    *start = penalty_value(&m);
    tg_optim *opt = tg_optim_new(TG_OPTIM_ADAM, m.p, 1e-2);
    tg_tape *tp = tg_tape_new();
    for (int step = 0; step < 60; step++) {
        tg_tape_reset(tp);
        tg_params_zero_grad(m.p);
        EXPECT_EQ(tg_backward(tp, terms(tp, &m, lambda).total), TG_OK) << tg_tape_error(tp);
        tg_optim_step(opt);
    }
    tg_tape_free(tp);
    tg_optim_free(opt);
    double end = penalty_value(&m);
    destroy(&m);
    return end;
}

TEST(GradientPenalty, TrainingWithThePenaltyLowersTheInputGradientNorm) {
    double start0, start1;
    double plain = train(0.0, &start0), penalised = train(100.0, &start1);
    EXPECT_EQ(start0, start1);
    std::printf("|d mse/dx|^2: start %.3g, trained without penalty %.3g, with penalty %.3g\n",
                start0, plain, penalised);
    EXPECT_LT(penalised, 0.5 * plain);
    EXPECT_LT(penalised, 0.5 * start0);
}

}  // namespace
