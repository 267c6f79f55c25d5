// tests/dist/dist_header.cpp - tapegrad/dist.h is valid C++ (extern "C"
// guards, no C-only syntax), as every public header must be (tg_shim.h does
// the same for the others, which need no MPI).
#include <tapegrad/dist.h>

#include <cstdio>

int main() {
    // Take the address of every entry point: each must be declared as C.
    const void *api[] = {
        reinterpret_cast<const void *>(&tg_dist_init),
        reinterpret_cast<const void *>(&tg_dist_new),
        reinterpret_cast<const void *>(&tg_dist_free),
        reinterpret_cast<const void *>(&tg_dist_rank),
        reinterpret_cast<const void *>(&tg_dist_size),
        reinterpret_cast<const void *>(&tg_dist_abort),
        reinterpret_cast<const void *>(&tg_dist_agree),
        reinterpret_cast<const void *>(&tg_dist_broadcast_params),
        reinterpret_cast<const void *>(&tg_dist_check_params),
        reinterpret_cast<const void *>(&tg_dist_average),
        reinterpret_cast<const void *>(&tg_dist_rank_rng),
        reinterpret_cast<const void *>(&tg_dist_reducer_new),
        reinterpret_cast<const void *>(&tg_dist_reducer_free),
        reinterpret_cast<const void *>(&tg_dist_reducer_sync),
        reinterpret_cast<const void *>(&tg_dist_reducer_stats_get),
        reinterpret_cast<const void *>(&tg_dist_checkpoint_save),
        reinterpret_cast<const void *>(&tg_dist_safetensors_open),
        reinterpret_cast<const void *>(&tg_dist_checkpoint_load_from),
        reinterpret_cast<const void *>(&tg_dist_checkpoint_load),
    };
    for (const void *f : api)
        if (!f) return 1;
    std::printf("tapegrad/dist.h: %zu entry points, declared as C\n", sizeof api / sizeof api[0]);
    return 0;
}
