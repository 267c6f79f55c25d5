/* io/names.c - tensor names: UTF-8 validation, and a registry's names in a
 * hash index (the index itself is the core's: autograd/name_index.c).
 *
 * The reference safetensors implementation refuses a header that is not
 * UTF-8, so names are checked both when a file is read and before one is
 * written. */
#include "io_internal.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), 0 when it is not one:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_seq(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int n = c >= 0xC2 && c <= 0xDF   ? 2   /* C0, C1: overlong two-byte forms */
            : c >= 0xE0 && c <= 0xEF ? 3
            : c >= 0xF0 && c <= 0xF4 ? 4   /* above F4: beyond U+10FFFF */
                                     : 0;
    for (int k = 1; k < n; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    if (n == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F))) return 0;
    if (n == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))) return 0;
    return n;
}

bool tg__utf8_valid(const char *s, size_t *bad_at) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; p[i];) {
        int n = utf8_seq(p + i);
        if (!n) {
            if (bad_at) *bad_at = i;
            return false;
        }
        i += (size_t)n;
    }
    return true;
}

tg_status tg__params_index(const tg_params *p, tg__name_index *x) {
    memset(x, 0, sizeof *x);
    for (int i = 0; i < tg_params_count(p); i++)
        if (tg__name_index_add(x, tg_params_name(p, i), i) == TG__NAME_NOMEM) {
            tg__name_index_free(x);
            return TG_ERR_NOMEM;
        }
    return TG_OK;
}
