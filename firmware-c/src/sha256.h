/* SHA-256 (FIPS 180-4), used for release ids (the hash of a signed manifest). Images are
 * checked by the fwledger library's streaming verifier, not by this. */
#ifndef FWL_SHA256_H
#define FWL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct fwl_sha256 {
    uint32_t h[8];
    uint64_t total;
    uint8_t block[64];
    size_t fill;
} fwl_sha256;

void fwl_sha256_init(fwl_sha256 *s);
void fwl_sha256_update(fwl_sha256 *s, const void *data, size_t len);
void fwl_sha256_final(fwl_sha256 *s, uint8_t out[32]);
void fwl_sha256_digest(const void *data, size_t len, uint8_t out[32]);

#endif
