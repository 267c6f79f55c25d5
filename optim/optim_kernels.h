/* optim/optim_kernels.h - the update kernels, written once for both dtypes.
 *
 * optim.c includes this file twice: with REAL double and K(x) x##_f64, then
 * with REAL float and K(x) x##_f32. PyTorch updates a float32 parameter in
 * float32 arithmetic, and so do these (eight lanes per AVX2 instruction), in
 * place, rather than widening each element to double and back.
 *
 * Each kernel follows the operation order of PyTorch 1.13's single-tensor
 * implementation (the formulas are in optim.h). A hyperparameter is rounded
 * to REAL where PyTorch hands it to a tensor op as a scalar; scalars PyTorch
 * computes in Python (bias corrections, step sizes) are computed in double
 * first. The settings that choose a formula are loop-invariant: each loop
 * body is an always-inline function of them, called once per combination,
 * so every loop the compiler sees is branch-free and vectorises. */

#ifndef TG_OPTIM_INLINE
#define TG_OPTIM_INLINE static inline __attribute__((always_inline))
#endif

/* ---- SGD: d = g (+ wd p); b = d or mom b + (1 - damp) d; d = d + mom b or b;
 *      p -= lr d ---------------------------------------------------------------- */
TG_OPTIM_INLINE void K(sgd_loop)(int64_t n, REAL *restrict p, const REAL *restrict g,
                                 REAL *restrict b, const tg_optim_opts *h, bool first,
                                 bool with_b) {
    const REAL wd = (REAL)h->weight_decay, mom = (REAL)h->momentum;
    const REAL keep = (REAL)(1 - h->dampening), nlr = (REAL)-h->lr;
    const bool decay = h->weight_decay != 0, nesterov = h->nesterov;
    TG_OPTIM_SIMD
    for (int64_t i = 0; i < n; i++) {
        REAL d = decay ? g[i] + wd * p[i] : g[i];
        if (with_b) {
            REAL bi = first ? d : b[i] * mom + keep * d;
            b[i] = bi;
            d = nesterov ? d + mom * bi : bi;
        }
        p[i] = p[i] + nlr * d;
    }
}

TG_OPTIM_CLONES static void K(sgd)(const upd_ctx *c, int64_t n, REAL *p, const REAL *g,
                                   REAL **s) {
    if (c->h->momentum != 0)
        K(sgd_loop)(n, p, g, s[0], c->h, c->first, true);
    else
        K(sgd_loop)(n, p, g, NULL, c->h, false, false);
}

/* The running mean of squares RMSprop (rate alpha) and Adadelta (rate rho)
 * keep: v[i] = rate v[i] + keep d d with keep = 1 - rate; returns the new v[i]. */
TG_OPTIM_INLINE REAL K(mean_square)(REAL *restrict v, int64_t i, REAL rate, REAL keep, REAL d) {
    REAL vi = v[i] * rate + keep * d * d;
    v[i] = vi;
    return vi;
}

/* ---- RMSprop: v = alpha v + (1 - alpha) d d; avg = sqrt(v (- a a)) + eps ----- */
TG_OPTIM_INLINE void K(rmsprop_loop)(int64_t n, REAL *restrict p, const REAL *restrict g,
                                     REAL *restrict v, REAL *restrict b, REAL *restrict a,
                                     const tg_optim_opts *h, bool with_b, bool with_a) {
    const REAL wd = (REAL)h->weight_decay, al = (REAL)h->alpha, keep = (REAL)(1 - h->alpha);
    const REAL eps = (REAL)h->eps, mom = (REAL)h->momentum, nlr = (REAL)-h->lr;
    const bool decay = h->weight_decay != 0;
    TG_OPTIM_SIMD
    for (int64_t i = 0; i < n; i++) {
        REAL d = decay ? g[i] + wd * p[i] : g[i];
        REAL vi = K(mean_square)(v, i, al, keep, d);
        REAL avg;
        if (with_a) {
            REAL ai = a[i] * al + keep * d;
            a[i] = ai;
            avg = sqrt(vi + (REAL)-1 * ai * ai);
        } else {
            avg = sqrt(vi);
        }
        avg = avg + eps;
        if (with_b) {
            REAL bi = b[i] * mom + d / avg;
            b[i] = bi;
            p[i] = p[i] + nlr * bi;
        } else {
            p[i] = p[i] + nlr * d / avg;
        }
    }
}

TG_OPTIM_CLONES static void K(rmsprop)(const upd_ctx *c, int64_t n, REAL *p, const REAL *g,
                                       REAL **s) {
    const tg_optim_opts *h = c->h;
    bool mom = h->momentum > 0;
    if (mom && h->centered)
        K(rmsprop_loop)(n, p, g, s[0], s[1], s[2], h, true, true);
    else if (mom)
        K(rmsprop_loop)(n, p, g, s[0], s[1], NULL, h, true, false);
    else if (h->centered)
        K(rmsprop_loop)(n, p, g, s[0], NULL, s[2], h, false, true);
    else
        K(rmsprop_loop)(n, p, g, s[0], NULL, NULL, h, false, false);
}

/* ---- Adam / AdamW: m, v moments; p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps) */
TG_OPTIM_INLINE void K(adam_loop)(int64_t n, REAL *restrict p, const REAL *restrict g,
                                  REAL *restrict m, REAL *restrict v, REAL *restrict vmax,
                                  const upd_ctx *c, bool amsgrad) {
    const tg_optim_opts *h = c->h;
    double step_size = h->lr / (1 - pow(h->beta1, (double)c->t));
    const REAL bc2_sqrt = (REAL)sqrt(1 - pow(h->beta2, (double)c->t));
    const REAL b1 = (REAL)h->beta1, keep1 = (REAL)(1 - h->beta1);
    const REAL b2 = (REAL)h->beta2, keep2 = (REAL)(1 - h->beta2);
    const REAL wd = (REAL)h->weight_decay, shrink = (REAL)(1 - h->lr * h->weight_decay);
    const REAL eps = (REAL)h->eps, nstep = (REAL)-step_size;
    const bool decoupled = c->decoupled, decay = h->weight_decay != 0;
    TG_OPTIM_SIMD
    for (int64_t i = 0; i < n; i++) {
        REAL pi = decoupled ? p[i] * shrink : p[i];
        REAL d = !decoupled && decay ? g[i] + wd * pi : g[i];
        REAL mi = m[i] * b1 + keep1 * d;
        REAL vi = v[i] * b2 + keep2 * d * d;
        m[i] = mi;
        v[i] = vi;
        if (amsgrad) {   /* a NaN in v propagates, as torch.maximum */
            REAL top = vmax[i] >= vi ? vmax[i] : vi;
            vmax[i] = top;
            vi = top;
        }
        REAL denom = sqrt(vi) / bc2_sqrt + eps;
        p[i] = pi + nstep * mi / denom;
    }
}

TG_OPTIM_CLONES static void K(adam)(const upd_ctx *c, int64_t n, REAL *p, const REAL *g,
                                    REAL **s) {
    if (c->h->amsgrad)
        K(adam_loop)(n, p, g, s[0], s[1], s[2], c, true);
    else
        K(adam_loop)(n, p, g, s[0], s[1], NULL, c, false);
}

/* ---- Adagrad: sum += d d; p -= clr d / (sqrt(sum) + eps) --------------------- */
TG_OPTIM_CLONES static void K(adagrad)(const upd_ctx *c, int64_t n, REAL *p, const REAL *g,
                                       REAL **s) {
    const tg_optim_opts *h = c->h;
    REAL *restrict sum = s[0];
    const REAL wd = (REAL)h->weight_decay, eps = (REAL)h->eps;
    const REAL nclr = (REAL)(-(h->lr / (1 + (double)(c->t - 1) * h->lr_decay)));
    const bool decay = h->weight_decay != 0;
    TG_OPTIM_SIMD
    for (int64_t i = 0; i < n; i++) {
        REAL d = decay ? g[i] + wd * p[i] : g[i];
        REAL si = sum[i] + (REAL)1 * d * d;
        sum[i] = si;
        REAL std = sqrt(si) + eps;
        p[i] = p[i] + nclr * d / std;
    }
}

/* ---- Adadelta: v = rho v + (1 - rho) d d; delta = sqrt(u + eps) / sqrt(v + eps) d;
 *      u = rho u + (1 - rho) delta^2; p -= lr delta -------------------------------- */
TG_OPTIM_CLONES static void K(adadelta)(const upd_ctx *c, int64_t n, REAL *p, const REAL *g,
                                        REAL **s) {
    const tg_optim_opts *h = c->h;
    REAL *restrict v = s[0], *restrict u = s[1];
    const REAL wd = (REAL)h->weight_decay, rho = (REAL)h->rho, keep = (REAL)(1 - h->rho);
    const REAL eps = (REAL)h->eps, nlr = (REAL)-h->lr;
    const bool decay = h->weight_decay != 0;
    TG_OPTIM_SIMD
    for (int64_t i = 0; i < n; i++) {
        REAL d = decay ? g[i] + wd * p[i] : g[i];
        REAL vi = K(mean_square)(v, i, rho, keep, d);
        REAL std = sqrt(vi + eps);
        REAL delta = sqrt(u[i] + eps) / std * d;
        u[i] = u[i] * rho + keep * delta * delta;
        p[i] = p[i] + nlr * delta;
    }
}
