/* examples/fashion_mnist.h - the Fashion-MNIST images for the image examples
 * (cnn, autoencoder): loading Debian's dataset-fashion-mnist files, and
 * pictures made of image tiles (learned filters, reconstructions).
 *
 * The files are gzipped IDX: a big-endian header (magic 0x00000803 for
 * images, 0x00000801 for labels, then one 32-bit size per dimension) and one
 * byte per pixel or label. Pixels are scaled to [0, 1]. */
#ifndef TG_EXAMPLES_FASHION_MNIST_H
#define TG_EXAMPLES_FASHION_MNIST_H

#include <stdbool.h>
#include <stdint.h>

#define FM_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define FM_HINT "install Debian's package: apt-get install dataset-fashion-mnist (or give --data DIR " \
                "holding the four *-ubyte.gz files)"

enum { FM_CLASSES = 10, FM_SIDE = 28, FM_PIXELS = FM_SIDE * FM_SIDE };

extern const char *const FM_CLASS_NAMES[FM_CLASSES];

typedef struct fm_split {
    float *x;       /* [n, 784] row-major, in [0, 1]; 64 bytes of slack for BLIS */
    int32_t *y;     /* [n], 0..9                                                 */
    int64_t n;
} fm_split;

/* Reads <dir>/<prefix>-images-idx3-ubyte.gz and -labels-idx1-ubyte.gz
 * (prefix "train" or "t10k"). 0, or 1 after a message naming the file and
 * where to get it; d is then empty (fm_free is still safe). */
int fm_load(const char *dir, const char *prefix, fm_split *d);
void fm_free(fm_split *d);

/* A PNG of n grey tiles of th x tw values each (tile-major, row-major inside),
 * cols tiles per row with a one-pixel gap, through gnuplot. Each tile is
 * scaled to its own range when per_tile, else all share [lo, hi].
 * row_labels (optional) names each row of tiles. Returns true when written;
 * otherwise prints "plot skipped: ..." as the other plots do. */
bool fm_plot_tiles(const char *png, const char *title, const float *tiles, int n, int th, int tw,
                   int cols, bool per_tile, double lo, double hi, const char *const *row_labels);

#endif
