/* Streams a file through the C image verifier: what a device does while writing the inactive
 * slot. bench/c_verify_vs_openssl.sh times it against `openssl dgst -sha256`.
 *
 *   c_verify_throughput FILE SIZE SHA256_HEX [CHUNK_BYTES]   → exit 0 if the image verifies */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fwledger.h"

int main(int argc, char **argv) {
    uint8_t sha[FWL_SHA256_LEN];
    fwl_image_verifier v;
    size_t chunk = argc > 4 ? (size_t)strtoull(argv[4], NULL, 10) : 65536, i;
    uint8_t *buf;
    ssize_t n;
    int fd;
    fwl_status s;
    if (argc < 4 || strlen(argv[3]) != 2 * FWL_SHA256_LEN || chunk == 0) {
        fprintf(stderr, "usage: %s FILE SIZE SHA256_HEX [CHUNK_BYTES]\n", argv[0]);
        return 2;
    }
    for (i = 0; i < FWL_SHA256_LEN; i++) {
        unsigned int byte;
        if (sscanf(argv[3] + 2 * i, "%2x", &byte) != 1) return 2;
        sha[i] = (uint8_t)byte;
    }
    buf = malloc(chunk);
    fd = open(argv[1], O_RDONLY);
    if (buf == NULL || fd < 0) return 2;
    s = fwl_image_verifier_init_raw(&v, strtoull(argv[2], NULL, 10), sha, sizeof sha);
    while (s == FWL_OK && (n = read(fd, buf, chunk)) > 0) s = fwl_image_verifier_update(&v, buf, (size_t)n);
    if (s == FWL_OK) s = fwl_image_verifier_finish(&v);
    close(fd);
    free(buf);
    if (s != FWL_OK) {
        fprintf(stderr, "refused: %s\n", fwl_status_str(s));
        return 1;
    }
    return 0;
}
