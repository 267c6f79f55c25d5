/* examples/fashion_mnist.c - see fashion_mnist.h. */
#include "fashion_mnist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <tapegrad.h>

const char *const FM_CLASS_NAMES[FM_CLASSES] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                                                "Ankle boot"};

/* Largest decompressed file accepted: the training images take 47 MB. */
#define MAX_FILE_BYTES ((size_t)1 << 30)

static int fail(const char *path, const char *what) {
    fprintf(stderr, "error: %s '%s'\n  %s\n", what, path, FM_HINT);
    return 1;
}

/* The whole decompressed file; NULL after a message. */
static unsigned char *gz_slurp(const char *path, size_t *len) {
    int fd = tg_file_open(path, "data file");   /* a FIFO or device is refused, never read */
    gzFile f = fd >= 0 ? gzdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        fprintf(stderr, "error: %s\n  %s\n", fd >= 0 ? "out of memory" : tg_last_error(), FM_HINT);
        return NULL;
    }
    size_t cap = (size_t)1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    int got = 0;
    while (buf && (got = gzread(f, buf + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)got;
        if (n < cap) continue;
        unsigned char *grown = cap < MAX_FILE_BYTES ? realloc(buf, 2 * cap) : NULL;
        if (!grown) {
            free(buf);
            buf = NULL;
        }
        buf = grown;
        cap *= 2;
    }
    gzclose(f);
    if (!buf || got < 0) {
        free(buf);
        return fail(path, got < 0 ? "cannot decompress data file" : "out of memory or too large:"),
               NULL;
    }
    *len = n;
    return buf;
}

/* Checks an IDX header of ndim sizes (magic 0x0000080<ndim>) against the file
 * length; dims[] gets the sizes. Returns the payload, NULL after a message. */
static const unsigned char *idx_payload(const char *path, const unsigned char *buf, size_t len,
                                        int ndim, int64_t *dims) {
    size_t head = 4 + 4 * (size_t)ndim, count = 1;
    if (len < head || buf[0] || buf[1] || buf[2] != 0x08 || buf[3] != ndim) {
        fail(path, ndim == 3 ? "not a gzipped IDX image file (magic 0x00000803):"
                             : "not a gzipped IDX label file (magic 0x00000801):");
        return NULL;
    }
    for (int i = 0; i < ndim; i++) {
        const unsigned char *b = buf + 4 + 4 * i;
        dims[i] = (int64_t)b[0] << 24 | (int64_t)b[1] << 16 | (int64_t)b[2] << 8 | b[3];
        count *= (size_t)dims[i];   /* < 2^32 each; the file length bounds the product below */
        if (count > len) break;
    }
    if (count != len - head) {
        fail(path, "sizes in the header do not match the file length:");
        return NULL;
    }
    return buf + head;
}

static int fill(fm_split *d, const unsigned char *px, const unsigned char *lab, int64_t n,
                const char *lpath) {
    d->x = malloc((size_t)n * FM_PIXELS * sizeof *d->x + 64);
    d->y = malloc((size_t)n * sizeof *d->y);
    if (!d->x || !d->y) return fail(lpath, "out of memory reading");
    for (size_t i = 0; i < (size_t)n * FM_PIXELS; i++) d->x[i] = (float)px[i] / 255.0f;
    for (int64_t i = 0; i < n; i++) {
        if (lab[i] >= FM_CLASSES) return fail(lpath, "label outside 0..9 in");
        d->y[i] = lab[i];
    }
    d->n = n;
    return 0;
}

int fm_load(const char *dir, const char *prefix, fm_split *d) {
    char ipath[1024], lpath[1024];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    memset(d, 0, sizeof *d);
    size_t ilen = 0, llen = 0;
    int64_t idims[3], ldims[1];
    unsigned char *ibuf = gz_slurp(ipath, &ilen), *lbuf = ibuf ? gz_slurp(lpath, &llen) : NULL;
    const unsigned char *px = ibuf ? idx_payload(ipath, ibuf, ilen, 3, idims) : NULL;
    const unsigned char *lab = px && lbuf ? idx_payload(lpath, lbuf, llen, 1, ldims) : NULL;
    int rc = 1;
    if (lab && (idims[0] < 1 || idims[1] != FM_SIDE || idims[2] != FM_SIDE || ldims[0] != idims[0]))
        fail(ipath, "expected N images of 28x28 and as many labels:");
    else if (lab)
        rc = fill(d, px, lab, idims[0], lpath);
    free(ibuf);
    free(lbuf);
    if (rc) fm_free(d);
    return rc;
}

void fm_free(fm_split *d) {
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

/* ---- tiles ----------------------------------------------------------------------------- */
/* Each tile's value range [lo, hi]: its own (per_tile) or the shared one. */
static void tile_ranges(const float *tiles, int n, int px, bool per_tile, double lo, double hi,
                        double *range) {
    for (int t = 0; t < n; t++) {
        range[2 * t] = lo, range[2 * t + 1] = hi;
        if (!per_tile) continue;
        range[2 * t] = INFINITY, range[2 * t + 1] = -INFINITY;
        for (int k = 0; k < px; k++) {
            range[2 * t] = fmin(range[2 * t], tiles[(size_t)t * px + k]);
            range[2 * t + 1] = fmax(range[2 * t + 1], tiles[(size_t)t * px + k]);
        }
    }
}

static double scaled(double v, const double *range) {
    v = range[1] > range[0] ? (v - range[0]) / (range[1] - range[0]) : 0.5;
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

static void write_script(FILE *g, const char *png, const char *title, int rows, int cols,
                         int th, const char *const *row_labels, int tile_rows) {
    int scale = 900 / cols > 12 ? 12 : 900 / cols < 3 ? 3 : 900 / cols;
    fprintf(g, "set terminal pngcairo size %d,%d\nset output '%s'\nset title '%s'\n",
            cols * scale + (row_labels ? 160 : 40), rows * scale + 70, png, title);
    fprintf(g, "unset key\nunset colorbox\nunset border\nunset xtics\nset palette grey\n"
               "set cbrange [0:1]\nset size ratio -1\nset xrange [-0.5:%d.5]\nset yrange [%d.5:-0.5]\n",
            cols - 1, rows - 1);
    if (!row_labels) fprintf(g, "unset ytics\n");
    else {
        fprintf(g, "set ytics scale 0 (");
        for (int r = 0; r < tile_rows; r++)
            fprintf(g, "%s\"%s\" %d", r ? ", " : "", row_labels[r], r * (th + 1) + th / 2);
        fprintf(g, ")\n");
    }
}

bool fm_plot_tiles(const char *png, const char *title, const float *tiles, int n, int th, int tw,
                   int cols, bool per_tile, double lo, double hi, const char *const *row_labels) {
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        printf("plot skipped: gnuplot not found (apt-get install gnuplot-nox)\n");
        return false;
    }
    int tile_rows = (n + cols - 1) / cols;
    int rows = tile_rows * (th + 1) - 1, width = cols * (tw + 1) - 1;
    double *range = malloc(2 * (size_t)n * sizeof *range);
    FILE *g = range ? popen("gnuplot 2>&1", "w") : NULL;
    if (!g) {
        free(range);
        return false;
    }
    tile_ranges(tiles, n, th * tw, per_tile, lo, hi, range);
    write_script(g, png, title, rows, width, th, row_labels, tile_rows);
    fprintf(g, "$m << EOD\n");
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < width; c++) {
            int t = r / (th + 1) * cols + c / (tw + 1), i = r % (th + 1), j = c % (tw + 1);
            if (t >= n || i == th || j == tw) fprintf(g, "%s1", c ? " " : "");   /* a white gap */
            else fprintf(g, "%s%.4f", c ? " " : "",
                         scaled(tiles[((size_t)t * th + i) * tw + j], range + 2 * t));
        }
        fprintf(g, "\n");
    }
    fprintf(g, "EOD\nplot $m matrix with image\n");
    free(range);
    bool ok = pclose(g) == 0;
    printf(ok ? "wrote %s\n" : "plot skipped: gnuplot failed writing %s\n", png);
    return ok;
}
