/* tests/nn/check_nn.h - Check suites of the nn layers and their helpers. */
#ifndef TG_CHECK_NN_H
#define TG_CHECK_NN_H

#include "check_suites.h"
#include "tapegrad/nn.h"

Suite *suite_nn_layers(void);
Suite *suite_nn_rnn(void);
Suite *suite_nn_cells(void);

/* Caller-owned [n0, n1] (n1 = 0: 1-D) float tensor from values; requires_grad as asked. */
static inline tg_tensor *nn_t(tg_dtype dt, int64_t n0, int64_t n1, const double *v, bool grad) {
    int64_t shape[2] = {n0, n1};
    tg_tensor *t = tg_tensor_from(dt, n1 ? 2 : 1, shape, v);
    if (t) tg_tensor_set_requires_grad(t, grad);
    return t;
}

#endif
