/* bench/onednn_check.h - onednn_reference --check: one step of W1/W2/W3 with
 * oneDNN and with tapegrad on the same weights and data; the loss and every
 * gradient must agree (float32, relative to each tensor's largest value).
 * Part of onednn_reference.c (included once, after the model code).
 *
 * Layouts. tapegrad keeps PyTorch's: weight_ih [G*H, I] (gates i f g o for
 * LSTM, r z n for GRU), weight_hh [G*H, H], bias_ih and bias_hh [G*H]. oneDNN
 * keeps ldigo: w[i][gate][o]; gates i f g o (LSTM), u r o (lbr_gru: u is
 * PyTorch's z); one bias per gate (b_ih + b_hh) plus, for lbr_gru, a fourth
 * block, the hidden candidate's b_hn. Sequences: tapegrad [B, T, .], oneDNN
 * [T, B, .]. */

typedef struct tg_side {
    tg_params *p;
    tg_rnn rnn;
    tg_linear fc;
    tg_embedding_layer emb;
    tg_tensor *x, *y, *target;   /* W1/W2: one-hot [B, T, V], ids [B, T]; W3: ids, [B, 1] */
} tg_side;

/* oneDNN gate of tapegrad's gate g (GRU: r z n -> u r o). */
static int dn_gate(const dn_model *m, int g) { return m->gru && g < 2 ? 1 - g : g; }

/* oneDNN bias block that tapegrad's bias_hh gate g feeds. */
static int dn_hh_block(const dn_model *m, int g) { return m->gru && g == 2 ? 3 : dn_gate(m, g); }

static tg_tensor *tg_side_loss(tg_tape *tp, const tg_side *s, bool w3) {
    if (w3) {
        tg_tensor *h = tg_rnn_forward(tp, &s->rnn, tg_embedding_layer_forward(tp, &s->emb, s->x),
                                      NULL, NULL, 0);
        return tg_bce_with_logits(tp, tg_linear_forward(tp, &s->fc, h), s->target);
    }
    tg_tensor *h = tg_rnn_forward(tp, &s->rnn, s->x, NULL, NULL, 0);
    return tg_cross_entropy(tp, tg_linear_forward(tp, &s->fc, h), s->y);
}

/* tapegrad's model at dn's shapes, its data copied from dn (time-major there). */
static int tg_side_open(tg_side *s, const dn_model *m, tg_rng *rng) {
    *s = (tg_side){.p = tg_params_new()};
    tg_rnn_opts o = tg_rnn_opts_default(m->gru ? &tg_cell_gru : &tg_cell_lstm, m->E, m->H);
    o.return_sequences = !m->w3;
    if (!s->p || tg_rnn_init(&s->rnn, s->p, "rnn", &o, TG_F32, rng) != TG_OK ||
        tg_linear_init(&s->fc, s->p, "fc", m->H, m->w3 ? 1 : m->V, TG_F32, rng, NULL) != TG_OK ||
        (m->w3 && tg_embedding_layer_init(&s->emb, s->p, "emb", m->V, m->E, TG_F32, rng, NULL)))
        return -1;
    int64_t T = m->T, B = m->B;
    s->y = tg_tensor_new(TG_I32, 2, (int64_t[]){B, T});
    s->x = m->w3 ? tg_tensor_new(TG_I32, 2, (int64_t[]){B, T})
                 : tg_tensor_new(TG_F32, 3, (int64_t[]){B, T, m->V});
    s->target = tg_tensor_new(TG_F32, 2, (int64_t[]){B, 1});
    if (!s->x || !s->y || !s->target) return -1;
    for (int64_t t = 0; t < T; t++)
        for (int64_t b = 0; b < B; b++) {
            int64_t i = t * B + b, j = b * T + t;
            tg_tensor_set(s->y, j, m->y[i]);
            if (m->w3) tg_tensor_set(s->x, j, m->ids[i]);
            else tg_tensor_set(s->x, j * m->V + m->ids[i], 1);
        }
    for (int64_t b = 0; b < B; b++) tg_tensor_set(s->target, b, m->target[b]);
    return 0;
}

/* oneDNN's index of tapegrad's weight_xx[g*H + o][i] (ldigo). */
static size_t dn_w_index(const dn_model *m, int64_t row, int64_t i) {
    int64_t g = row / m->H, o = row % m->H;
    return (size_t)((i * m->rnn.G + dn_gate(m, (int)g)) * m->H + o);
}

/* The layer's parameter by its leaf name ("weight_ih"). */
static const tg_tensor *tg_side_param(const tg_side *s, const char *leaf) {
    return tg_rnn_cell_param(tg_rnn_cell_at(&s->rnn, 0, 0), leaf);
}

static void copy_weights_to_dn(dn_model *m, const tg_side *s) {
    const tg_tensor *w_ih = tg_side_param(s, "weight_ih"), *w_hh = tg_side_param(s, "weight_hh");
    const tg_tensor *b_ih = tg_side_param(s, "bias_ih"), *b_hh = tg_side_param(s, "bias_hh");
    int64_t GH = m->rnn.G * m->H;
    memset(m->rnn.bias.p, 0, m->rnn.bias.n * sizeof(float));
    for (int64_t row = 0; row < GH; row++) {
        int g = (int)(row / m->H);
        int64_t o = row % m->H;
        for (int64_t i = 0; i < m->E; i++)
            m->rnn.w_x.p[dn_w_index(m, row, i)] = (float)tg_tensor_get(w_ih, row * m->E + i);
        for (int64_t i = 0; i < m->H; i++)
            m->rnn.w_h.p[dn_w_index(m, row, i)] = (float)tg_tensor_get(w_hh, row * m->H + i);
        m->rnn.bias.p[dn_gate(m, g) * m->H + o] += (float)tg_tensor_get(b_ih, row);
        m->rnn.bias.p[dn_hh_block(m, g) * m->H + o] += (float)tg_tensor_get(b_hh, row);
    }
    for (size_t i = 0; i < m->fc.w.n; i++) m->fc.w.p[i] = (float)tg_tensor_get(s->fc.weight, (int64_t)i);
    for (size_t i = 0; i < m->fc.b.n; i++) m->fc.b.p[i] = (float)tg_tensor_get(s->fc.bias, (int64_t)i);
    for (int64_t i = 0; m->w3 && i < m->V * m->E; i++)
        m->emb[i] = (float)tg_tensor_get(s->emb.weight, i);
}

/* Largest |tapegrad - oneDNN| over a tensor's gradient, against its largest
 * |value|; prints both (llm.c style) and returns whether they agree. */
typedef double (*dn_value_fn)(const dn_model *m, int64_t i);

static bool agree(const char *what, const tg_tensor *t, const dn_model *m, dn_value_fn dn) {
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) {
        double a = tg_tensor_grad_get(t, i), b = dn(m, i);
        double d = fabs(a - b);
        if (!(d <= worst)) worst = d;   /* NaN makes it NaN: fails below */
        if (fabs(a) > scale) scale = fabs(a);
    }
    bool ok = worst <= 1e-4 * (scale > 1e-6 ? scale : 1e-6);
    printf("  d%-16s max |tapegrad - oneDNN| %.3g  (largest |grad| %.3g)  %s\n", what, worst,
           scale, ok ? "ok" : "DIFFERS");
    return ok;
}

static double dn_dw_ih(const dn_model *m, int64_t k) {
    return m->rnn.dw_x.p[dn_w_index(m, k / m->E, k % m->E)];
}
static double dn_dw_hh(const dn_model *m, int64_t k) {
    return m->rnn.dw_h.p[dn_w_index(m, k / m->H, k % m->H)];
}
static double dn_db_ih(const dn_model *m, int64_t k) {
    return m->rnn.dbias.p[dn_gate(m, (int)(k / m->H)) * m->H + k % m->H];
}
static double dn_db_hh(const dn_model *m, int64_t k) {
    return m->rnn.dbias.p[dn_hh_block(m, (int)(k / m->H)) * m->H + k % m->H];
}
static double dn_dfc_w(const dn_model *m, int64_t k) { return m->fc.dw.p[k]; }
static double dn_dfc_b(const dn_model *m, int64_t k) { return m->fc.db.p[k]; }
static double dn_demb(const dn_model *m, int64_t k) { return m->demb[k]; }

static int check_against_tapegrad(const char *workload) {
    tg_rng rng = tg_rng_seeded(7);
    dn_model m;
    tg_side s;
    model_open(&m, workload, 1, &rng);
    if (tg_side_open(&s, &m, &rng) != 0) {
        fprintf(stderr, "check: tapegrad model: %s\n", tg_last_error());
        return 1;
    }
    copy_weights_to_dn(&m, &s);
    tg_tape *tp = tg_tape_new();
    tg_tensor *loss = tg_side_loss(tp, &s, m.w3);
    if (!loss || tg_backward(tp, loss) != TG_OK) {
        fprintf(stderr, "check: tapegrad step: %s\n", tg_tape_error(tp));
        return 1;
    }
    if (!m.w3) fill_input(&m);
    model_grads(&m);
    double lt = tg_tensor_item(loss);
    bool ok = fabs(lt - m.loss) <= 1e-5 * fabs(lt);
    printf("%s: one step, tapegrad vs oneDNN %d.%d (%s)\n  loss tapegrad %.7f oneDNN %.7f  %s\n",
           workload, dnnl_version()->major, dnnl_version()->minor, m.gru ? "lbr_gru" : "LSTM", lt,
           m.loss, ok ? "ok" : "DIFFERS");
    ok &= agree("weight_ih", tg_side_param(&s, "weight_ih"), &m, dn_dw_ih);
    ok &= agree("weight_hh", tg_side_param(&s, "weight_hh"), &m, dn_dw_hh);
    ok &= agree("bias_ih", tg_side_param(&s, "bias_ih"), &m, dn_db_ih);
    ok &= agree("bias_hh", tg_side_param(&s, "bias_hh"), &m, dn_db_hh);
    ok &= agree("fc.weight", s.fc.weight, &m, dn_dfc_w);
    ok &= agree("fc.bias", s.fc.bias, &m, dn_dfc_b);
    if (m.w3) ok &= agree("emb.weight", s.emb.weight, &m, dn_demb);
    printf("%s\n", ok ? "gradients agree" : "GRADIENTS DIFFER");
    tg_tape_free(tp);
    tg_tensor_free(s.x), tg_tensor_free(s.y), tg_tensor_free(s.target);
    tg_rnn_free(&s.rnn);
    tg_params_free(s.p);
    model_close(&m);
    return ok ? 0 : 1;
}
