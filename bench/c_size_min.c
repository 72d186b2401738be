/* The verify-only code a firmware links, as a host program: verify a signed manifest against the
 * vendor key, then stream an image through the verifier. bench/c_size.sh measures its text +
 * data minus those of an empty program (bench/c_size_empty.c).
 *
 *   c_size_min MANIFEST IMAGE VENDOR_KEY_FILE(32 raw bytes)   → exit 0 if both verify */
#include <fcntl.h>
#include <unistd.h>

#include "fwledger.h"

static uint8_t chunk[4096];
static uint8_t manifest[4096];

static ssize_t read_file(const char *path, uint8_t *buf, size_t len) {
    int fd = open(path, O_RDONLY);
    ssize_t n;
    if (fd < 0) return -1;
    n = read(fd, buf, len);
    close(fd);
    return n;
}

int main(int argc, char **argv) {
    uint8_t key[FWL_PUBLIC_KEY_LEN];
    fwl_manifest *m = NULL;
    fwl_image_verifier v;
    ssize_t n;
    int fd;
    if (argc != 4) return 2;
    if (read_file(argv[3], key, sizeof key) != (ssize_t)sizeof key) return 2;
    n = read_file(argv[1], manifest, sizeof manifest);
    if (n <= 0) return 2;
    if (fwl_manifest_verify(manifest, (size_t)n, key, sizeof key, 0, 0, &m) != FWL_OK) return 1;
    if (fwl_image_verifier_init(&v, m) != FWL_OK) return 1;
    fwl_manifest_free(m);
    fd = open(argv[2], O_RDONLY);
    if (fd < 0) return 2;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        if (fwl_image_verifier_update(&v, chunk, (size_t)n) != FWL_OK) return 1;
    close(fd);
    return fwl_image_verifier_finish(&v) == FWL_OK ? 0 : 1;
}
