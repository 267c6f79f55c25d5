/* io/files.c - opening a file to read without ever blocking on it.
 *
 * open() of a FIFO for reading blocks until a writer appears, and a device
 * such as /dev/zero reads forever; both looked like hangs. So the file is
 * opened with O_NONBLOCK (which makes open() of a FIFO return at once), its
 * type is checked on the descriptor itself (no window between a stat() and
 * the open()), and only a regular file is handed back, in blocking mode. */
#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m) {
    return S_ISDIR(m)    ? "a folder"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "of an unknown type";
}

static int fail(int fd, const char *who, const char *path, const char *what) {
    tg__set_last_error(TG_ERR_IO, "%s: %s: %s", who, path, what);
    if (fd >= 0) close(fd);
    return -1;
}

int tg_file_open(const char *path, const char *who) {
    who = who && *who ? who : "open";
    if (!path || !*path) return fail(-1, who, "(no path)", "the path is empty");
    int fd;
    do fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    struct stat sb;
    char why[160];
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(why, sizeof why, "cannot open: %s", strerror(errno));
        return fail(fd, who, path, why);
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(why, sizeof why, "cannot open: not a regular file (%s)", kind_of(sb.st_mode));
        return fail(fd, who, path, why);
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        snprintf(why, sizeof why, "cannot open: %s", strerror(errno));
        return fail(fd, who, path, why);
    }
    return fd;
}

FILE *tg_file_fopen(const char *path, const char *who) {
    int fd = tg_file_open(path, who);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) fail(fd, who && *who ? who : "open", path, "cannot open: out of memory");
    return f;
}
