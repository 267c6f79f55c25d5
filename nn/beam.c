/* nn/beam.c - beam search over any model that scores next tokens.
 *
 * Plain C over log-probabilities: nothing here touches a tape. The model is a
 * callback (tg_beam_step_fn) that scores the live hypotheses and reorders its
 * own state by their parents. Candidates are ranked by raw log-probability;
 * length normalisation only ranks the hypotheses that come out. */
#include "nn_private.h"
#include "tapegrad/nn_seq2seq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
    double lp;       /* log-probability of the extended hypothesis */
    int64_t parent;  /* hypothesis it extends                      */
    int32_t tok;     /* token it adds                              */
} cand;

/* Higher log-probability first; ties go to the lower parent, then the lower
 * token, so width 1 picks what greedy's first-maximum argmax picks. */
static bool better(const cand *a, const cand *b) {
    if (a->lp != b->lp) return a->lp > b->lp;
    if (a->parent != b->parent) return a->parent < b->parent;
    return a->tok < b->tok;
}

/* Keep the best cap candidates, sorted, in top[0..*n). */
static void offer(cand *top, int *n, int cap, cand c) {
    if (*n == cap && !better(&c, &top[cap - 1])) return;
    int i = *n < cap ? (*n)++ : cap - 1;
    while (i > 0 && better(&c, &top[i - 1])) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = c;
}

typedef struct search {
    int k;
    int64_t V, L;            /* vocabulary, max_len            */
    double alpha;
    int32_t *hist, *next;    /* [k, L] token histories: live, being built */
    double *lp, *lp_next;    /* [k]                            */
    int64_t *parents;        /* [k]                            */
    int32_t *tokens;         /* [k]                            */
    double *logp;            /* [k, V]                         */
    cand *top;               /* [2k]                           */
    int32_t *best;           /* [L] best result so far         */
    tg_decoded res;
    bool have;
} search;

static void release(search *s) {
    free(s->hist);
    free(s->next);
    free(s->lp);
    free(s->lp_next);
    free(s->parents);
    free(s->tokens);
    free(s->logp);
    free(s->top);
    free(s->best);
}

static bool alloc_search(search *s) {
    size_t k = (size_t)s->k, L = (size_t)s->L;
    s->hist = calloc(k * L, sizeof *s->hist);
    s->next = calloc(k * L, sizeof *s->next);
    s->lp = calloc(k, sizeof *s->lp);
    s->lp_next = calloc(k, sizeof *s->lp_next);
    s->parents = calloc(k, sizeof *s->parents);
    s->tokens = calloc(k, sizeof *s->tokens);
    s->logp = calloc(k * (size_t)s->V, sizeof *s->logp);
    s->top = calloc(2 * k, sizeof *s->top);
    s->best = calloc(L, sizeof *s->best);
    return s->hist && s->next && s->lp && s->lp_next && s->parents && s->tokens && s->logp &&
           s->top && s->best;
}

/* A hypothesis that comes out: tokens ids[0..len), log-probability lp.
 * Finished ones beat unfinished ones; then the higher lp / len^alpha. */
static void propose(search *s, const int32_t *ids, int64_t len, double lp, bool finished) {
    double score = s->alpha != 0 ? lp / pow((double)len, s->alpha) : lp;
    if (s->have && (s->res.finished > finished ||
                    (s->res.finished == finished && !(score > s->res.score))))
        return;
    memcpy(s->best, ids, (size_t)len * sizeof *ids);
    s->res = (tg_decoded){.length = len, .logprob = lp, .score = score, .finished = finished};
    s->have = true;
}

/* Step t: rank the extensions of the n live hypotheses, finish those ending in
 * EOS among the best k, keep the best k others live. Returns the live count. */
static int advance(search *s, int n, int64_t t, int32_t eos, int *n_finished) {
    int ntop = 0;
    for (int i = 0; i < n; i++)
        for (int64_t w = 0; w < s->V; w++) {
            double lp = s->lp[i] + s->logp[(int64_t)i * s->V + w];
            if (!isnan(lp)) offer(s->top, &ntop, 2 * s->k, (cand){lp, i, (int32_t)w});
        }
    int live = 0;
    for (int r = 0; r < ntop; r++) {
        const cand *c = &s->top[r];
        int32_t *row = s->hist + c->parent * s->L;
        if (c->tok == eos) {
            if (r >= s->k) continue;   /* an EOS outside the best k is not taken */
            row[t] = eos;               /* the parent's row is not reused after this step */
            propose(s, row, t + 1, c->lp, true);
            ++*n_finished;
            continue;
        }
        if (live == s->k) continue;
        int32_t *dst = s->next + (int64_t)live * s->L;
        memcpy(dst, row, (size_t)t * sizeof *row);
        dst[t] = c->tok;
        s->lp_next[live] = c->lp;
        s->parents[live] = c->parent;
        s->tokens[live] = c->tok;
        live++;
    }
    int32_t *h = s->hist;   /* the new live set becomes the current one */
    s->hist = s->next;
    s->next = h;
    double *l = s->lp;
    s->lp = s->lp_next;
    s->lp_next = l;
    return live;
}

tg_status tg_beam_search(tg_beam_step_fn step, void *user, int64_t vocab, int32_t go, int32_t eos,
                         const tg_beam_opts *o, int32_t *out, tg_decoded *res) {
    tg_beam_opts def = {0};
    if (!o) o = &def;
    search s = {.k = o->width ? o->width : TG_BEAM_DEFAULT_WIDTH, .V = vocab,
                .L = o->max_len ? o->max_len : TG_BEAM_DEFAULT_MAX_LEN, .alpha = o->alpha};
    if (!step || !out || !res || vocab < 1 || eos < 0 || eos >= vocab || s.k < 1 || s.L < 1 ||
        s.k > TG_BEAM_MAX_WIDTH || !isfinite(s.alpha))
        return nn_error(TG_ERR_ARG, "beam_search: bad arguments (vocab %lld, eos %d, width %d)",
                        (long long)vocab, (int)eos, s.k);
    if (!alloc_search(&s)) {
        release(&s);
        return TG_ERR_NOMEM;
    }
    tg_status st = TG_OK;
    int n = 1, n_finished = 0;
    s.tokens[0] = go;
    for (int64_t t = 0; t < s.L; t++) {
        st = step(user, n, s.parents, s.tokens, s.logp);
        if (st != TG_OK) break;
        n = advance(&s, n, t, eos, &n_finished);
        if (n_finished >= s.k || n == 0) break;
        for (int i = 0; t + 1 == s.L && i < n; i++)   /* out of steps: the live ones count */
            propose(&s, s.hist + (int64_t)i * s.L, s.L, s.lp[i], false);
    }
    if (st == TG_OK) {
        *res = s.have ? s.res : (tg_decoded){.logprob = -INFINITY, .score = -INFINITY};
        memcpy(out, s.best, (size_t)res->length * sizeof *out);
    }
    release(&s);
    return st;
}
