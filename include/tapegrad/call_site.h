/* tapegrad/call_site.h - who called: file:line of each op and layer call.
 *
 * Anomaly mode and the profiler (tapegrad/inspect.h) name the line of the
 * user's code that made an op. Each function below is wrapped in a
 * function-like macro that first records __FILE__ and __LINE__ for this
 * thread (tg_call_site), then calls the function of the same name: a macro
 * does not expand inside its own expansion, so the real function runs and
 * stays exported under its name (its address, `tg_matmul` without a call,
 * is untouched). This costs one store per call when no tool is on.
 *
 * The library itself is compiled without these macros (TG_BUILDING_LIBRARY):
 * an op that nn/ records inside tg_rnn_forward keeps the site of the user's
 * tg_rnn_forward call, the line a researcher can act on. A custom cell's
 * step function is user code, so its ops name their own lines.
 * Define TG_NO_CALL_SITES before including tapegrad headers to go without.
 *
 * Included at the end of each header that declares them; the block of a
 * header is defined once that header's guard is. */
#if !defined(TG_BUILDING_LIBRARY) && !defined(TG_NO_CALL_SITES)

#define TG_CALL_SITE(call) (tg_call_site(__FILE__, __LINE__), call)

#if defined(TAPEGRAD_OPS_H) && !defined(TG__CALL_SITES_OPS_H)
#define TG__CALL_SITES_OPS_H
#define tg_matmul(...) TG_CALL_SITE(tg_matmul(__VA_ARGS__))
#define tg_matmul_ex(...) TG_CALL_SITE(tg_matmul_ex(__VA_ARGS__))
#define tg_add(...) TG_CALL_SITE(tg_add(__VA_ARGS__))
#define tg_sub(...) TG_CALL_SITE(tg_sub(__VA_ARGS__))
#define tg_mul(...) TG_CALL_SITE(tg_mul(__VA_ARGS__))
#define tg_div(...) TG_CALL_SITE(tg_div(__VA_ARGS__))
#define tg_neg(...) TG_CALL_SITE(tg_neg(__VA_ARGS__))
#define tg_scale(...) TG_CALL_SITE(tg_scale(__VA_ARGS__))
#define tg_shift(...) TG_CALL_SITE(tg_shift(__VA_ARGS__))
#define tg_sigmoid(...) TG_CALL_SITE(tg_sigmoid(__VA_ARGS__))
#define tg_tanh(...) TG_CALL_SITE(tg_tanh(__VA_ARGS__))
#define tg_relu(...) TG_CALL_SITE(tg_relu(__VA_ARGS__))
#define tg_exp(...) TG_CALL_SITE(tg_exp(__VA_ARGS__))
#define tg_log(...) TG_CALL_SITE(tg_log(__VA_ARGS__))
#define tg_sqrt(...) TG_CALL_SITE(tg_sqrt(__VA_ARGS__))
#define tg_pow(...) TG_CALL_SITE(tg_pow(__VA_ARGS__))
#define tg_hard_sigmoid(...) TG_CALL_SITE(tg_hard_sigmoid(__VA_ARGS__))
#define tg_hard_sigmoid_ex(...) TG_CALL_SITE(tg_hard_sigmoid_ex(__VA_ARGS__))
#define tg_rsqrt(...) TG_CALL_SITE(tg_rsqrt(__VA_ARGS__))
#define tg_affine(...) TG_CALL_SITE(tg_affine(__VA_ARGS__))
#define tg_where(...) TG_CALL_SITE(tg_where(__VA_ARGS__))
#define tg_softmax(...) TG_CALL_SITE(tg_softmax(__VA_ARGS__))
#define tg_log_softmax(...) TG_CALL_SITE(tg_log_softmax(__VA_ARGS__))
#define tg_concat(...) TG_CALL_SITE(tg_concat(__VA_ARGS__))
#define tg_slice(...) TG_CALL_SITE(tg_slice(__VA_ARGS__))
#define tg_reshape(...) TG_CALL_SITE(tg_reshape(__VA_ARGS__))
#define tg_transpose(...) TG_CALL_SITE(tg_transpose(__VA_ARGS__))
#define tg_permute(...) TG_CALL_SITE(tg_permute(__VA_ARGS__))
#define tg_sum(...) TG_CALL_SITE(tg_sum(__VA_ARGS__))
#define tg_mean(...) TG_CALL_SITE(tg_mean(__VA_ARGS__))
#define tg_sum_axis(...) TG_CALL_SITE(tg_sum_axis(__VA_ARGS__))
#define tg_mean_axis(...) TG_CALL_SITE(tg_mean_axis(__VA_ARGS__))
#define tg_max_axis(...) TG_CALL_SITE(tg_max_axis(__VA_ARGS__))
#define tg_conv1d(...) TG_CALL_SITE(tg_conv1d(__VA_ARGS__))
#define tg_max_pool1d(...) TG_CALL_SITE(tg_max_pool1d(__VA_ARGS__))
#define tg_conv2d(...) TG_CALL_SITE(tg_conv2d(__VA_ARGS__))
#define tg_conv2d_ex(...) TG_CALL_SITE(tg_conv2d_ex(__VA_ARGS__))
#define tg_max_pool2d(...) TG_CALL_SITE(tg_max_pool2d(__VA_ARGS__))
#define tg_max_pool2d_ex(...) TG_CALL_SITE(tg_max_pool2d_ex(__VA_ARGS__))
#define tg_avg_pool2d(...) TG_CALL_SITE(tg_avg_pool2d(__VA_ARGS__))
#define tg_avg_pool2d_ex(...) TG_CALL_SITE(tg_avg_pool2d_ex(__VA_ARGS__))
#define tg_embedding(...) TG_CALL_SITE(tg_embedding(__VA_ARGS__))
#define tg_dropout(...) TG_CALL_SITE(tg_dropout(__VA_ARGS__))
#define tg_mse(...) TG_CALL_SITE(tg_mse(__VA_ARGS__))
#define tg_bce_with_logits(...) TG_CALL_SITE(tg_bce_with_logits(__VA_ARGS__))
#define tg_cross_entropy(...) TG_CALL_SITE(tg_cross_entropy(__VA_ARGS__))
#define tg_cross_entropy_ex(...) TG_CALL_SITE(tg_cross_entropy_ex(__VA_ARGS__))
#endif

#if defined(TAPEGRAD_OP_H) && !defined(TG__CALL_SITES_OP_H)
#define TG__CALL_SITES_OP_H
#define tg_apply(...) TG_CALL_SITE(tg_apply(__VA_ARGS__))
#endif

#if defined(TAPEGRAD_NN_LAYERS_H) && !defined(TG__CALL_SITES_NN_LAYERS_H)
#define TG__CALL_SITES_NN_LAYERS_H
#define tg_activate(...) TG_CALL_SITE(tg_activate(__VA_ARGS__))
#define tg_linear_forward(...) TG_CALL_SITE(tg_linear_forward(__VA_ARGS__))
#define tg_layer_norm_forward(...) TG_CALL_SITE(tg_layer_norm_forward(__VA_ARGS__))
#define tg_layer_norm_fn(...) TG_CALL_SITE(tg_layer_norm_fn(__VA_ARGS__))
#define tg_embedding_layer_forward(...) TG_CALL_SITE(tg_embedding_layer_forward(__VA_ARGS__))
#define tg_spatial_dropout1d(...) TG_CALL_SITE(tg_spatial_dropout1d(__VA_ARGS__))
#define tg_conv1d_layer_forward(...) TG_CALL_SITE(tg_conv1d_layer_forward(__VA_ARGS__))
#define tg_global_max_pool1d(...) TG_CALL_SITE(tg_global_max_pool1d(__VA_ARGS__))
#endif

#if defined(TAPEGRAD_NN_ATTENTION_H) && !defined(TG__CALL_SITES_NN_ATTENTION_H)
#define TG__CALL_SITES_NN_ATTENTION_H
#define tg_padding_mask(...) TG_CALL_SITE(tg_padding_mask(__VA_ARGS__))
#define tg_key_padding_keep(...) TG_CALL_SITE(tg_key_padding_keep(__VA_ARGS__))
#define tg_padding_mask_ids(...) TG_CALL_SITE(tg_padding_mask_ids(__VA_ARGS__))
#define tg_causal_mask(...) TG_CALL_SITE(tg_causal_mask(__VA_ARGS__))
#define tg_positional_encoding(...) TG_CALL_SITE(tg_positional_encoding(__VA_ARGS__))
#define tg_masked_softmax(...) TG_CALL_SITE(tg_masked_softmax(__VA_ARGS__))
#define tg_scaled_dot_product_attention(...) \
    TG_CALL_SITE(tg_scaled_dot_product_attention(__VA_ARGS__))
#define tg_attention_forward(...) TG_CALL_SITE(tg_attention_forward(__VA_ARGS__))
#define tg_mha_forward(...) TG_CALL_SITE(tg_mha_forward(__VA_ARGS__))
#define tg_transformer_encoder_forward(...) \
    TG_CALL_SITE(tg_transformer_encoder_forward(__VA_ARGS__))
#define tg_transformer_decoder_forward(...) \
    TG_CALL_SITE(tg_transformer_decoder_forward(__VA_ARGS__))
#endif

#if defined(TAPEGRAD_NN_CELL_H) && !defined(TG__CALL_SITES_NN_CELL_H)
#define TG__CALL_SITES_NN_CELL_H
#define tg_gate_cols(...) TG_CALL_SITE(tg_gate_cols(__VA_ARGS__))
#endif

#if defined(TAPEGRAD_NN_CONV2D_H) && !defined(TG__CALL_SITES_NN_CONV2D_H)
#define TG__CALL_SITES_NN_CONV2D_H
#define tg_conv2d_layer_forward(...) TG_CALL_SITE(tg_conv2d_layer_forward(__VA_ARGS__))
#endif

#if defined(TAPEGRAD_NN_RNN_H) && !defined(TG__CALL_SITES_NN_RNN_H)
#define TG__CALL_SITES_NN_RNN_H
#define tg_rnn_cell_param(...) TG_CALL_SITE(tg_rnn_cell_param(__VA_ARGS__))
#define tg_rnn_cell_step(...) TG_CALL_SITE(tg_rnn_cell_step(__VA_ARGS__))
#define tg_rnn_forward(...) TG_CALL_SITE(tg_rnn_forward(__VA_ARGS__))
#define tg_pad_sequences(...) TG_CALL_SITE(tg_pad_sequences(__VA_ARGS__))
#endif

#if defined(TAPEGRAD_NN_SEQ2SEQ_H) && !defined(TG__CALL_SITES_NN_SEQ2SEQ_H)
#define TG__CALL_SITES_NN_SEQ2SEQ_H
#define tg_seq2seq_encode(...) TG_CALL_SITE(tg_seq2seq_encode(__VA_ARGS__))
#define tg_seq2seq_step(...) TG_CALL_SITE(tg_seq2seq_step(__VA_ARGS__))
#define tg_seq2seq_loss(...) TG_CALL_SITE(tg_seq2seq_loss(__VA_ARGS__))
#endif

#endif
