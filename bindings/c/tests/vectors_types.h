/* The shapes of the test vectors that vectors.cmake generates (see tests/vectors/proto.json).
 * Byte strings are lowercase hex; absent optional fields are NULL or 0. */
#ifndef FWLEDGER_TEST_VECTORS_TYPES_H
#define FWLEDGER_TEST_VECTORS_TYPES_H

#include <stddef.h>
#include <stdint.h>

#define VEC_MAX_HARDWARE 8

typedef struct {
    const char *name;
    const char *signed_hex; /* the COSE_Sign1 */
    const char *vendor;
    const char *model;
    const char *version;
    const char *sha256_hex;
    const char *cid;
    const char *prerequisite; /* NULL when absent */
    const char *notes;        /* NULL when absent */
    size_t hardware_count;
    const char *hardware[VEC_MAX_HARDWARE];
    uint64_t security_version;
    uint64_t size;
    uint64_t issued;
    uint64_t expires; /* 0 when absent */
    uint64_t key_generation;
} vec_manifest;

typedef struct {
    const char *name;
    const char *manifest; /* name of a vec_manifest */
    const char *model;
    const char *hardware;
    const char *version;
    uint64_t security_version;
    uint64_t now;
    const char *expected; /* "ok" or a check name */
} vec_policy;

typedef struct {
    const char *name;
    const char *kind; /* "manifest" or "image" */
    const char *input_hex;
    const char *manifest; /* image vectors: name of a vec_manifest */
    uint64_t min_key_generation;
    const char *expected; /* a check name */
} vec_negative;

#endif
