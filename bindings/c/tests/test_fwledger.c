/* C tests of the fwledger C API, on the shared protocol test vectors (tests/vectors/proto.json,
 * turned into vectors.h at configure time). Built with -std=c99 -pedantic -Wall -Wextra -Werror,
 * plainly and under AddressSanitizer + UndefinedBehaviorSanitizer.
 *
 *   fwledger_tests GROUP     runs one group: status manifest negative image policy notice args
 *                            garbage threads; or "all". ctest runs each group as its own test. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwledger.h"
#include "harness.h"
#include "vectors.h"

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes lowercase hex into a new buffer (free it); *len receives its length. */
static uint8_t *hex_decode(const char *hex, size_t *len) {
    size_t n = strlen(hex) / 2, i;
    uint8_t *out = malloc(n ? n : 1);
    if (out == NULL) abort();
    for (i = 0; i < n; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) abort();
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n;
    return out;
}

static uint8_t root_key[32];
static uint8_t other_root_key[32];

static void load_keys(void) {
    size_t len;
    uint8_t *k = hex_decode(vec_root_key_hex, &len);
    if (len != 32) abort();
    memcpy(root_key, k, 32);
    free(k);
    k = hex_decode(vec_other_root_key_hex, &len);
    if (len != 32) abort();
    memcpy(other_root_key, k, 32);
    free(k);
}

static const vec_manifest *manifest_vector(const char *name) {
    size_t i;
    for (i = 0; i < VEC_MANIFESTS; i++)
        if (strcmp(vec_manifests[i].name, name) == 0) return &vec_manifests[i];
    fprintf(stderr, "no manifest vector %s\n", name);
    abort();
}

/* Verifies a manifest vector; the handle, or NULL (and a failed check). */
static fwl_manifest *verified(const char *name) {
    size_t len;
    uint8_t *signed_ = hex_decode(manifest_vector(name)->signed_hex, &len);
    fwl_manifest *m = NULL;
    CHECK_STATUS(fwl_manifest_verify(signed_, len, root_key, 32, 0, VEC_NOW, &m), FWL_OK);
    free(signed_);
    return m;
}

/* The image of the vectors: byte i = (i * 7 + 3) mod 256 (free it). */
static uint8_t *vector_image(size_t extra) {
    size_t i, n = (size_t)VEC_IMAGE_SIZE;
    uint8_t *image = malloc(n + extra + 1);
    if (image == NULL) abort();
    for (i = 0; i < n + extra; i++) image[i] = (uint8_t)((i * 7 + 3) % 256);
    return image;
}

/* Streams `len` bytes in `chunk`-byte pieces; the first failing status, else finish's. */
static fwl_status stream(const fwl_manifest *m, const uint8_t *data, size_t len, size_t chunk) {
    fwl_image_verifier v;
    size_t off;
    fwl_status s = fwl_image_verifier_init(&v, m);
    if (s != FWL_OK) return s;
    for (off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        s = fwl_image_verifier_update(&v, data + off, n);
        if (s != FWL_OK) return s;
    }
    return fwl_image_verifier_finish(&v);
}

/* The status a check name stands for, by the protocol's table (docs/PROTOCOL.md §13). */
static fwl_status status_of_check(const char *check, int image_too_long) {
    static const struct {
        const char *check;
        fwl_status status;
    } table[] = {
        {"ok", FWL_OK},
        {"manifest-format", FWL_ERR_MALFORMED},
        {"signature-algorithm", FWL_ERR_UNSUPPORTED_ALGORITHM},
        {"release-key-certificate", FWL_ERR_KEY_NOT_CERTIFIED},
        {"release-key-role", FWL_ERR_KEY_WRONG_ROLE},
        {"release-key-expiry", FWL_ERR_KEY_EXPIRED},
        {"release-key-generation", FWL_ERR_KEY_RETIRED},
        {"manifest-signature", FWL_ERR_BAD_SIGNATURE},
        {"vendor-key", FWL_ERR_WRONG_VENDOR},
        {"manifest-expiry", FWL_ERR_MANIFEST_EXPIRED},
        {"image-sha256", FWL_ERR_IMAGE_DIGEST_MISMATCH},
        {"model", FWL_ERR_WRONG_MODEL},
        {"hardware", FWL_ERR_WRONG_HARDWARE},
        {"version", FWL_ERR_NOT_NEWER},
        {"security-version", FWL_ERR_SECURITY_VERSION_ROLLBACK},
        {"prerequisite", FWL_ERR_PREREQUISITE_NOT_MET},
    };
    size_t i;
    if (strcmp(check, "image-size") == 0)
        return image_too_long ? FWL_ERR_IMAGE_TOO_LONG : FWL_ERR_IMAGE_TRUNCATED;
    for (i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].check, check) == 0) return table[i].status;
    fprintf(stderr, "unknown check name %s\n", check);
    abort();
}

/* Appends a CBOR head (shortest form) to p; returns the bytes written. */
static size_t cbor_head(uint8_t *p, unsigned major, uint64_t v) {
    uint8_t m = (uint8_t)(major << 5);
    if (v < 24) {
        p[0] = (uint8_t)(m | v);
        return 1;
    }
    if (v <= 0xff) {
        p[0] = m | 24;
        p[1] = (uint8_t)v;
        return 2;
    }
    if (v <= 0xffff) {
        p[0] = m | 25;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)v;
        return 3;
    }
    if (v <= 0xffffffffu) {
        p[0] = m | 26;
        p[1] = (uint8_t)(v >> 24);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 8);
        p[4] = (uint8_t)v;
        return 5;
    }
    {
        int i;
        p[0] = m | 27;
        for (i = 0; i < 8; i++) p[1 + i] = (uint8_t)(v >> (56 - 8 * i));
        return 9;
    }
}

/* A notice, as a gateway sends it (docs/PROTOCOL.md §12): {1: 1, 2: manifest, 3: url, ? 4: time}.
 * Returns a new buffer (free it). */
static uint8_t *make_notice(const uint8_t *manifest, size_t manifest_len, const char *url,
                            uint64_t gateway_time, size_t *len) {
    size_t url_len = strlen(url), n = 0;
    uint8_t *p = malloc(manifest_len + url_len + 64);
    if (p == NULL) abort();
    n += cbor_head(p + n, 5, gateway_time ? 4 : 3);
    n += cbor_head(p + n, 0, 1);
    n += cbor_head(p + n, 0, 1);
    n += cbor_head(p + n, 0, 2);
    n += cbor_head(p + n, 2, manifest_len);
    memcpy(p + n, manifest, manifest_len);
    n += manifest_len;
    n += cbor_head(p + n, 0, 3);
    n += cbor_head(p + n, 3, url_len);
    memcpy(p + n, url, url_len);
    n += url_len;
    if (gateway_time) {
        n += cbor_head(p + n, 0, 4);
        n += cbor_head(p + n, 0, gateway_time);
    }
    *len = n;
    return p;
}

static uint64_t xorshift_state = 0x9e3779b97f4a7c15u;
static uint64_t next_random(void) {
    uint64_t x = xorshift_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return xorshift_state = x;
}

/* ------------------------------------------------------------------------------------------ */
/* Groups                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static void test_status(void) {
    static const struct {
        fwl_status status;
        int code;
        const char *check;
    } table[] = {
        {FWL_OK, 0, "ok"},
        {FWL_ERR_NULL, 1, "argument"},
        {FWL_ERR_BUFFER_TOO_SMALL, 2, "argument"},
        {FWL_ERR_INVALID_ARGUMENT, 3, "argument"},
        {FWL_ERR_MALFORMED, 10, "manifest-format"},
        {FWL_ERR_UNSUPPORTED_ALGORITHM, 11, "signature-algorithm"},
        {FWL_ERR_KEY_NOT_CERTIFIED, 12, "release-key-certificate"},
        {FWL_ERR_KEY_WRONG_ROLE, 13, "release-key-role"},
        {FWL_ERR_KEY_EXPIRED, 14, "release-key-expiry"},
        {FWL_ERR_KEY_RETIRED, 15, "release-key-generation"},
        {FWL_ERR_BAD_SIGNATURE, 16, "manifest-signature"},
        {FWL_ERR_WRONG_VENDOR, 17, "vendor-key"},
        {FWL_ERR_MANIFEST_EXPIRED, 18, "manifest-expiry"},
        {FWL_ERR_NOTICE_MALFORMED, 19, "notice-format"},
        {FWL_ERR_IMAGE_TOO_LONG, 20, "image-size"},
        {FWL_ERR_IMAGE_TRUNCATED, 21, "image-size"},
        {FWL_ERR_IMAGE_DIGEST_MISMATCH, 22, "image-sha256"},
        {FWL_ERR_WRONG_MODEL, 30, "model"},
        {FWL_ERR_WRONG_HARDWARE, 31, "hardware"},
        {FWL_ERR_NOT_NEWER, 32, "version"},
        {FWL_ERR_SECURITY_VERSION_ROLLBACK, 33, "security-version"},
        {FWL_ERR_PREREQUISITE_NOT_MET, 34, "prerequisite"},
        {FWL_ERR_INTERNAL, 99, "internal"},
    };
    size_t n = sizeof table / sizeof table[0], i, j;
    for (i = 0; i < n; i++) {
        const char *s = fwl_status_str(table[i].status);
        CHECK((int)table[i].status == table[i].code);
        CHECK(s != NULL && s[0] != '\0');
        CHECK_STR(fwl_status_check(table[i].status), table[i].check);
        for (j = 0; j < i; j++) CHECK(strcmp(s, fwl_status_str(table[j].status)) != 0);
    }
    CHECK_STR(fwl_status_str(-1), "unknown status");
    CHECK_STR(fwl_status_str(1000), "unknown status");
    CHECK_STR(fwl_status_check(4), "unknown");
    CHECK(FWL_OK == 0);
    CHECK(fwl_library_version() != NULL && strchr(fwl_library_version(), '.') != NULL);
    CHECK(sizeof(fwl_image_verifier) == FWL_IMAGE_VERIFIER_SIZE);
    CHECK(FWL_IMAGE_VERIFIER_SIZE == FWL_IMAGE_VERIFIER_WORDS * 8);
    CHECK(FWL_PUBLIC_KEY_LEN == 32 && FWL_SHA256_LEN == 32);
}

static void test_manifest(void) {
    size_t i, k;
    for (i = 0; i < VEC_MANIFESTS; i++) {
        const vec_manifest *v = &vec_manifests[i];
        fwl_manifest *m = verified(v->name);
        char buf[256];
        size_t len = 0, count = 0;
        uint64_t u = 0;
        uint8_t sha[32];
        size_t sha_len;
        uint8_t *want_sha = hex_decode(v->sha256_hex, &sha_len);
        if (m == NULL) {
            free(want_sha);
            continue;
        }
        CHECK_STATUS(fwl_manifest_vendor(m, buf, sizeof buf, &len), FWL_OK);
        CHECK_STR(buf, v->vendor);
        CHECK(len == strlen(v->vendor));
        CHECK_STATUS(fwl_manifest_model(m, buf, sizeof buf, &len), FWL_OK);
        CHECK_STR(buf, v->model);
        CHECK_STATUS(fwl_manifest_version(m, buf, sizeof buf, NULL), FWL_OK);
        CHECK_STR(buf, v->version);
        CHECK_STATUS(fwl_manifest_cid(m, buf, sizeof buf, &len), FWL_OK);
        CHECK_STR(buf, v->cid);
        CHECK_STATUS(fwl_manifest_prerequisite(m, buf, sizeof buf, &len), FWL_OK);
        CHECK_STR(buf, v->prerequisite ? v->prerequisite : "");
        CHECK_STATUS(fwl_manifest_notes(m, buf, sizeof buf, &len), FWL_OK);
        CHECK_STR(buf, v->notes ? v->notes : "");
        CHECK_STATUS(fwl_manifest_security_version(m, &u), FWL_OK);
        CHECK(u == v->security_version);
        CHECK_STATUS(fwl_manifest_size(m, &u), FWL_OK);
        CHECK(u == v->size);
        CHECK_STATUS(fwl_manifest_issued(m, &u), FWL_OK);
        CHECK(u == v->issued);
        CHECK_STATUS(fwl_manifest_expires(m, &u), FWL_OK);
        CHECK(u == v->expires);
        CHECK_STATUS(fwl_manifest_key_generation(m, &u), FWL_OK);
        CHECK(u == v->key_generation);
        CHECK_STATUS(fwl_manifest_sha256(m, sha, sizeof sha), FWL_OK);
        CHECK(sha_len == 32 && memcmp(sha, want_sha, 32) == 0);
        CHECK_STATUS(fwl_manifest_hardware_count(m, &count), FWL_OK);
        CHECK(count == v->hardware_count);
        for (k = 0; k < count && k < VEC_MAX_HARDWARE; k++) {
            CHECK_STATUS(fwl_manifest_hardware(m, k, buf, sizeof buf, &len), FWL_OK);
            CHECK_STR(buf, v->hardware[k]);
        }
        CHECK_STATUS(fwl_manifest_hardware(m, count, buf, sizeof buf, &len), FWL_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(fwl_manifest_check_security_version(m, v->security_version), FWL_OK);
        CHECK_STATUS(fwl_manifest_check_security_version(m, v->security_version + 1),
                     FWL_ERR_SECURITY_VERSION_ROLLBACK);
        free(want_sha);
        fwl_manifest_free(m);

        /* Key generations: the certificate's own is accepted, the next one retires it. */
        {
            size_t slen;
            uint8_t *s = hex_decode(v->signed_hex, &slen);
            fwl_manifest *again = NULL;
            CHECK_STATUS(fwl_manifest_verify(s, slen, root_key, 32, v->key_generation, VEC_NOW, &again),
                         FWL_OK);
            fwl_manifest_free(again);
            again = (fwl_manifest *)s; /* must be overwritten with NULL */
            CHECK_STATUS(fwl_manifest_verify(s, slen, root_key, 32, v->key_generation + 1, VEC_NOW, &again),
                         FWL_ERR_KEY_RETIRED);
            CHECK(again == NULL);
            /* No clock: still verifies (time checks need a clock). */
            CHECK_STATUS(fwl_manifest_verify(s, slen, root_key, 32, 0, 0, &again), FWL_OK);
            fwl_manifest_free(again);
            /* Another vendor's root key: the certificate does not chain. */
            CHECK_STATUS(fwl_manifest_verify(s, slen, other_root_key, 32, 0, VEC_NOW, &again),
                         FWL_ERR_KEY_NOT_CERTIFIED);
            free(s);
        }
    }
}

static void test_negative(void) {
    size_t i, manifests = 0, images = 0;
    for (i = 0; i < VEC_NEGATIVES; i++) {
        const vec_negative *v = &vec_negatives[i];
        size_t len;
        uint8_t *input = hex_decode(v->input_hex, &len);
        fwl_status got;
        if (strcmp(v->kind, "manifest") == 0) {
            fwl_manifest *m = (fwl_manifest *)input;
            got = fwl_manifest_verify(input, len, root_key, 32, v->min_key_generation, VEC_NOW, &m);
            CHECK(m == NULL);
            CHECK_STATUS(got, status_of_check(v->expected, 0));
            manifests++;
        } else {
            fwl_manifest *m = verified(v->manifest);
            got = stream(m, input, len, 256);
            CHECK_STATUS(got, status_of_check(v->expected, len > VEC_IMAGE_SIZE));
            fwl_manifest_free(m);
            images++;
        }
        if (strcmp(fwl_status_check(got), v->expected) != 0)
            fprintf(stderr, "  in vector %s\n", v->name);
        CHECK_STR(fwl_status_check(got), v->expected);
        free(input);
    }
    CHECK(manifests >= 10);
    CHECK(images >= 3);
}

static void test_image(void) {
    fwl_manifest *m = verified("lamp-1.1.0");
    size_t n = (size_t)VEC_IMAGE_SIZE, i, chunks[] = {1, 7, 64, 999, 1000, 4096};
    uint8_t *image = vector_image(1);
    fwl_image_verifier v;
    uint64_t received = 1;
    uint8_t sha[32];
    if (m == NULL) return;

    /* Good image, any chunking. */
    for (i = 0; i < sizeof chunks / sizeof chunks[0]; i++)
        CHECK_STATUS(stream(m, image, n, chunks[i]), FWL_OK);

    /* A bit flip anywhere. */
    for (i = 0; i < n; i += 97) {
        image[i] ^= 0x10;
        CHECK_STATUS(stream(m, image, n, 128), FWL_ERR_IMAGE_DIGEST_MISMATCH);
        image[i] ^= 0x10;
    }

    /* Truncated. */
    CHECK_STATUS(stream(m, image, n - 1, 128), FWL_ERR_IMAGE_TRUNCATED);
    CHECK_STATUS(stream(m, image, 0, 128), FWL_ERR_IMAGE_TRUNCATED);

    /* Too long: fails at the first byte past the size, then stays failed. */
    CHECK_STATUS(fwl_image_verifier_init(&v, m), FWL_OK);
    for (i = 0; i < n; i++) {
        fwl_status s = fwl_image_verifier_update(&v, image + i, 1);
        if (s != FWL_OK) {
            CHECK_STATUS(s, FWL_OK);
            break;
        }
    }
    CHECK_STATUS(fwl_image_verifier_received(&v, &received), FWL_OK);
    CHECK(received == n);
    CHECK_STATUS(fwl_image_verifier_update(&v, image + n, 1), FWL_ERR_IMAGE_TOO_LONG);
    CHECK_STATUS(fwl_image_verifier_update(&v, image, 0), FWL_ERR_IMAGE_TOO_LONG);
    CHECK_STATUS(fwl_image_verifier_finish(&v), FWL_ERR_IMAGE_TOO_LONG);
    /* A chunk straddling the end is refused whole. */
    CHECK_STATUS(stream(m, image, n + 1, 600), FWL_ERR_IMAGE_TOO_LONG);

    /* After finish, and before init, the state is refused. */
    CHECK_STATUS(fwl_image_verifier_update(&v, image, 1), FWL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(fwl_image_verifier_finish(&v), FWL_ERR_INVALID_ARGUMENT);
    memset(&v, 0, sizeof v);
    CHECK_STATUS(fwl_image_verifier_update(&v, image, 1), FWL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(fwl_image_verifier_received(&v, &received), FWL_ERR_INVALID_ARGUMENT);

    /* init_raw: the size and digest from elsewhere. */
    CHECK_STATUS(fwl_manifest_sha256(m, sha, sizeof sha), FWL_OK);
    CHECK_STATUS(fwl_image_verifier_init_raw(&v, n, sha, sizeof sha), FWL_OK);
    CHECK_STATUS(fwl_image_verifier_update(&v, image, n), FWL_OK);
    CHECK_STATUS(fwl_image_verifier_finish(&v), FWL_OK);
    CHECK_STATUS(fwl_image_verifier_init_raw(&v, n, sha, 31), FWL_ERR_INVALID_ARGUMENT);

    /* The state is plain data: a copy continues independently (snapshot and resume). */
    {
        fwl_image_verifier snapshot;
        CHECK_STATUS(fwl_image_verifier_init(&v, m), FWL_OK);
        CHECK_STATUS(fwl_image_verifier_update(&v, image, n / 2), FWL_OK);
        memcpy(&snapshot, &v, sizeof v);
        CHECK_STATUS(fwl_image_verifier_update(&v, image + n / 2, n - n / 2), FWL_OK);
        CHECK_STATUS(fwl_image_verifier_finish(&v), FWL_OK);
        image[n - 1] ^= 1;
        CHECK_STATUS(fwl_image_verifier_update(&snapshot, image + n / 2, n - n / 2), FWL_OK);
        CHECK_STATUS(fwl_image_verifier_finish(&snapshot), FWL_ERR_IMAGE_DIGEST_MISMATCH);
        image[n - 1] ^= 1;
    }

    /* The manifest may be freed once the verifier is initialised. */
    CHECK_STATUS(fwl_image_verifier_init(&v, m), FWL_OK);
    fwl_manifest_free(m);
    CHECK_STATUS(fwl_image_verifier_update(&v, image, n), FWL_OK);
    CHECK_STATUS(fwl_image_verifier_finish(&v), FWL_OK);
    free(image);
}

static void test_policy(void) {
    size_t i;
    int order = 7;
    fwl_manifest *m;
    for (i = 0; i < VEC_POLICIES; i++) {
        const vec_policy *p = &vec_policies[i];
        fwl_manifest *pm = verified(p->manifest);
        fwl_status got;
        if (pm == NULL) continue;
        got = fwl_policy_decide(pm, p->model, p->hardware, p->version, p->security_version, p->now);
        CHECK_STATUS(got, status_of_check(p->expected, 0));
        CHECK_STR(fwl_status_check(got), p->expected);
        fwl_manifest_free(pm);
    }

    m = verified("lamp-1.2.0");
    if (m == NULL) return;
    CHECK_STATUS(fwl_policy_decide(m, "lamp", "rev-c", "1.1.0", 2, 0), FWL_OK);
    CHECK_STATUS(fwl_policy_decide(m, "lamp", "rev-c", "1.1", 0, 0), FWL_ERR_MALFORMED);
    CHECK_STATUS(fwl_policy_decide(m, "lamp", "rev-c", "1.1.0", 3, 0), FWL_ERR_SECURITY_VERSION_ROLLBACK);
    /* Without a clock the expiry is not checked. */
    CHECK_STATUS(fwl_policy_decide(m, "lamp", "rev-c", "1.1.0", 0, 0), FWL_OK);
    CHECK_STATUS(fwl_policy_decide(m, "lamp", "rev-c", "1.1.0", 0, UINT64_MAX), FWL_ERR_MANIFEST_EXPIRED);
    fwl_manifest_free(m);

    CHECK_STATUS(fwl_version_compare("1.0.0", "1.0.1", &order), FWL_OK);
    CHECK(order == -1);
    CHECK_STATUS(fwl_version_compare("1.10.0", "1.9.0", &order), FWL_OK);
    CHECK(order == 1);
    CHECK_STATUS(fwl_version_compare("1.0.0-rc.1", "1.0.0", &order), FWL_OK);
    CHECK(order == -1);
    CHECK_STATUS(fwl_version_compare("1.0.0+build.7", "1.0.0", &order), FWL_OK);
    CHECK(order == 0);
    order = 7;
    CHECK_STATUS(fwl_version_compare("1.0", "1.0.0", &order), FWL_ERR_MALFORMED);
    CHECK_STATUS(fwl_version_compare("1.0.0", "v1.0.0", &order), FWL_ERR_MALFORMED);
    CHECK(order == 7);
}

static void test_notice(void) {
    const vec_manifest *mv = manifest_vector("lamp-1.2.0");
    const char *url = "https://127.0.0.1:8443/fw/1e9bc38cbf860b9e";
    size_t signed_len, notice_len, len = 0;
    uint8_t *signed_ = hex_decode(mv->signed_hex, &signed_len);
    uint8_t *notice = make_notice(signed_, signed_len, url, 1700000001u, &notice_len);
    fwl_notice *n = NULL;
    fwl_manifest *m = NULL;
    const uint8_t *data = NULL;
    char buf[128];
    uint64_t t = 0;

    CHECK_STATUS(fwl_notice_parse(notice, notice_len, &n), FWL_OK);
    CHECK_STATUS(fwl_notice_url(n, buf, sizeof buf, &len), FWL_OK);
    CHECK_STR(buf, url);
    CHECK(len == strlen(url));
    CHECK_STATUS(fwl_notice_gateway_time(n, &t), FWL_OK);
    CHECK(t == 1700000001u);
    CHECK_STATUS(fwl_notice_manifest(n, &data, &len), FWL_OK);
    CHECK(len == signed_len && data != NULL && memcmp(data, signed_, len) == 0);
    /* The borrowed manifest bytes verify as they are. */
    CHECK_STATUS(fwl_manifest_verify(data, len, root_key, 32, 0, VEC_NOW, &m), FWL_OK);
    fwl_manifest_free(m);
    fwl_notice_free(n);

    /* Parse and verify in one call. */
    n = NULL;
    m = NULL;
    CHECK_STATUS(fwl_notice_verify(notice, notice_len, root_key, 32, 0, VEC_NOW, &n, &m), FWL_OK);
    CHECK(n != NULL && m != NULL);
    CHECK_STATUS(fwl_manifest_version(m, buf, sizeof buf, NULL), FWL_OK);
    CHECK_STR(buf, "1.2.0");
    CHECK_STATUS(fwl_notice_url(n, buf, sizeof buf, NULL), FWL_OK);
    CHECK_STR(buf, url);
    fwl_notice_free(n);
    fwl_manifest_free(m);
    CHECK_STATUS(fwl_notice_verify(notice, notice_len, root_key, 32, 0, VEC_NOW, NULL, &m), FWL_OK);
    fwl_manifest_free(m);
    free(notice);

    /* No gateway time. */
    notice = make_notice(signed_, signed_len, url, 0, &notice_len);
    CHECK_STATUS(fwl_notice_parse(notice, notice_len, &n), FWL_OK);
    t = 5;
    CHECK_STATUS(fwl_notice_gateway_time(n, &t), FWL_OK);
    CHECK(t == 0);
    fwl_notice_free(n);

    /* Garbled notices. */
    n = (fwl_notice *)notice;
    CHECK_STATUS(fwl_notice_parse(notice, notice_len - 1, &n), FWL_ERR_NOTICE_MALFORMED);
    CHECK(n == NULL);
    CHECK_STATUS(fwl_notice_verify(notice, 1, root_key, 32, 0, VEC_NOW, &n, &m), FWL_ERR_NOTICE_MALFORMED);
    CHECK(n == NULL && m == NULL);
    free(notice);

    /* A compromised gateway's forged notice: each manifest attack still fails, with its reason. */
    {
        size_t i, forged = 0;
        for (i = 0; i < VEC_NEGATIVES; i++) {
            const vec_negative *v = &vec_negatives[i];
            size_t ilen;
            uint8_t *input;
            if (strcmp(v->kind, "manifest") != 0) continue;
            input = hex_decode(v->input_hex, &ilen);
            notice = make_notice(input, ilen, url, 0, &notice_len);
            n = (fwl_notice *)input;
            m = (fwl_manifest *)input;
            CHECK_STATUS(fwl_notice_verify(notice, notice_len, root_key, 32, v->min_key_generation,
                                           VEC_NOW, &n, &m),
                         status_of_check(v->expected, 0));
            CHECK(n == NULL && m == NULL);
            free(notice);
            free(input);
            forged++;
        }
        CHECK(forged >= 10);
    }
    free(signed_);
}

static void test_args(void) {
    fwl_manifest *m = verified("lamp-1.2.0");
    size_t signed_len, len = 99, count;
    uint8_t *signed_ = hex_decode(manifest_vector("lamp-1.2.0")->signed_hex, &signed_len);
    fwl_manifest *out = (fwl_manifest *)signed_;
    fwl_notice *n = NULL;
    fwl_image_verifier v;
    char buf[64], small[5];
    uint8_t sha[32];
    uint64_t u;
    int order;
    const uint8_t *data;
    if (m == NULL) return;

    /* NULL arguments. */
    CHECK_STATUS(fwl_manifest_verify(NULL, 10, root_key, 32, 0, 0, &out), FWL_ERR_NULL);
    CHECK(out == NULL);
    CHECK_STATUS(fwl_manifest_verify(signed_, signed_len, NULL, 32, 0, 0, &out), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_verify(signed_, signed_len, root_key, 32, 0, 0, NULL), FWL_ERR_NULL);
    CHECK(fwl_last_error(buf, sizeof buf) > 0 && strstr(buf, "`out` is NULL") != NULL);
    CHECK_STATUS(fwl_manifest_vendor(NULL, buf, sizeof buf, &len), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_model(NULL, buf, sizeof buf, &len), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_version(NULL, buf, sizeof buf, &len), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_cid(NULL, buf, sizeof buf, &len), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_prerequisite(NULL, buf, sizeof buf, &len), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_notes(NULL, buf, sizeof buf, &len), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_model(m, NULL, sizeof buf, &len), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_security_version(NULL, &u), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_security_version(m, NULL), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_size(m, NULL), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_issued(m, NULL), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_expires(m, NULL), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_key_generation(m, NULL), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_sha256(NULL, sha, sizeof sha), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_sha256(m, NULL, sizeof sha), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_hardware_count(NULL, &count), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_hardware_count(m, NULL), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_hardware(NULL, 0, buf, sizeof buf, &len), FWL_ERR_NULL);
    CHECK_STATUS(fwl_manifest_check_security_version(NULL, 0), FWL_ERR_NULL);
    CHECK_STATUS(fwl_notice_parse(NULL, 3, &n), FWL_ERR_NULL);
    CHECK_STATUS(fwl_notice_parse(signed_, signed_len, NULL), FWL_ERR_NULL);
    CHECK_STATUS(fwl_notice_verify(NULL, 3, root_key, 32, 0, 0, NULL, &out), FWL_ERR_NULL);
    CHECK_STATUS(fwl_notice_verify(signed_, signed_len, NULL, 32, 0, 0, NULL, &out), FWL_ERR_NULL);
    CHECK_STATUS(fwl_notice_verify(signed_, signed_len, root_key, 32, 0, 0, NULL, NULL), FWL_ERR_NULL);
    CHECK_STATUS(fwl_notice_manifest(NULL, &data, &len), FWL_ERR_NULL);
    CHECK_STATUS(fwl_notice_url(NULL, buf, sizeof buf, &len), FWL_ERR_NULL);
    CHECK_STATUS(fwl_notice_gateway_time(NULL, &u), FWL_ERR_NULL);
    CHECK_STATUS(fwl_policy_decide(NULL, "lamp", "rev-b", "1.0.0", 0, 0), FWL_ERR_NULL);
    CHECK_STATUS(fwl_policy_decide(m, NULL, "rev-b", "1.0.0", 0, 0), FWL_ERR_NULL);
    CHECK_STATUS(fwl_policy_decide(m, "lamp", NULL, "1.0.0", 0, 0), FWL_ERR_NULL);
    CHECK_STATUS(fwl_policy_decide(m, "lamp", "rev-b", NULL, 0, 0), FWL_ERR_NULL);
    CHECK_STATUS(fwl_version_compare(NULL, "1.0.0", &order), FWL_ERR_NULL);
    CHECK_STATUS(fwl_version_compare("1.0.0", NULL, &order), FWL_ERR_NULL);
    CHECK_STATUS(fwl_version_compare("1.0.0", "1.0.0", NULL), FWL_ERR_NULL);
    CHECK_STATUS(fwl_image_verifier_init(NULL, m), FWL_ERR_NULL);
    CHECK_STATUS(fwl_image_verifier_init(&v, NULL), FWL_ERR_NULL);
    CHECK_STATUS(fwl_image_verifier_init_raw(NULL, 1, sha, 32), FWL_ERR_NULL);
    CHECK_STATUS(fwl_image_verifier_init_raw(&v, 1, NULL, 32), FWL_ERR_NULL);
    CHECK_STATUS(fwl_image_verifier_init(&v, m), FWL_OK);
    CHECK_STATUS(fwl_image_verifier_update(NULL, sha, 1), FWL_ERR_NULL);
    CHECK_STATUS(fwl_image_verifier_update(&v, NULL, 1), FWL_ERR_NULL);
    CHECK_STATUS(fwl_image_verifier_received(NULL, &u), FWL_ERR_NULL);
    CHECK_STATUS(fwl_image_verifier_received(&v, NULL), FWL_ERR_NULL);
    CHECK_STATUS(fwl_image_verifier_finish(NULL), FWL_ERR_NULL);
    fwl_manifest_free(NULL);
    fwl_notice_free(NULL);

    /* Bad lengths. */
    CHECK_STATUS(fwl_manifest_verify(signed_, signed_len, root_key, 31, 0, 0, &out), FWL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(fwl_manifest_verify(signed_, signed_len, root_key, 33, 0, 0, &out), FWL_ERR_INVALID_ARGUMENT);

    /* Small buffers: the needed length is reported, the buffer holds an empty string. */
    memset(small, 'x', sizeof small);
    CHECK_STATUS(fwl_manifest_version(m, small, sizeof small, &len), FWL_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 5 && small[0] == '\0');
    CHECK(fwl_last_error(buf, sizeof buf) > 0 && strstr(buf, "6 bytes are needed") != NULL);
    CHECK_STATUS(fwl_manifest_version(m, NULL, 0, &len), FWL_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 5);
    CHECK_STATUS(fwl_manifest_notes(m, small, sizeof small, &len), FWL_ERR_BUFFER_TOO_SMALL);
    CHECK(len == strlen("Fixes the dimmer flicker."));
    CHECK_STATUS(fwl_manifest_sha256(m, sha, 31), FWL_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(fwl_manifest_hardware(m, 0, small, 3, &len), FWL_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 5);
    CHECK_STATUS(fwl_manifest_hardware(m, 0, buf, 6, &len), FWL_OK);
    CHECK_STR(buf, "rev-b");

    /* The last error: set by a failure, cleared by the next call, cut to fit, per thread. */
    CHECK_STATUS(fwl_manifest_verify(signed_, signed_len - 1, root_key, 32, 0, 0, &out), FWL_ERR_MALFORMED);
    len = fwl_last_error(NULL, 0);
    CHECK(len > 20 && len < 256);
    CHECK(fwl_last_error(buf, sizeof buf) == len);
    CHECK(strncmp(buf, "fwl_manifest_verify: malformed", 30) == 0);
    CHECK(fwl_last_error(small, sizeof small) == len);
    CHECK(strlen(small) == 4);
    CHECK_STATUS(fwl_manifest_size(m, &u), FWL_OK);
    CHECK(fwl_last_error(buf, sizeof buf) == 0 && buf[0] == '\0');

    fwl_manifest_free(m);
    free(signed_);
}

static void test_garbage(void) {
    size_t signed_len, i;
    uint8_t *signed_ = hex_decode(manifest_vector("lamp-1.2.0")->signed_hex, &signed_len);
    uint8_t *buf = malloc(signed_len + 2048);
    if (buf == NULL) abort();

    /* Every single-byte change of a signed manifest is refused. */
    for (i = 0; i < signed_len; i++) {
        fwl_manifest *m = NULL;
        fwl_status s;
        memcpy(buf, signed_, signed_len);
        buf[i] ^= 0x01;
        s = fwl_manifest_verify(buf, signed_len, root_key, 32, 0, VEC_NOW, &m);
        if (s == FWL_OK || s == FWL_ERR_INTERNAL || m != NULL) {
            CHECK_STATUS(s, FWL_ERR_BAD_SIGNATURE);
            fwl_manifest_free(m);
        } else {
            h_passed++;
        }
        /* Every truncation. */
        s = fwl_manifest_verify(signed_, i, root_key, 32, 0, VEC_NOW, &m);
        if (s != FWL_ERR_MALFORMED) CHECK_STATUS(s, FWL_ERR_MALFORMED);
    }

    /* Random bytes, and a valid prefix followed by random bytes, as manifests and notices. */
    for (i = 0; i < 2000; i++) {
        size_t len = (size_t)(next_random() % (signed_len + 1024)), k;
        fwl_manifest *m = NULL;
        fwl_notice *n = NULL;
        fwl_status s;
        size_t keep = (i % 2) ? (size_t)(next_random() % signed_len) : 0;
        memcpy(buf, signed_, keep);
        for (k = keep; k < len; k++) buf[k] = (uint8_t)next_random();
        s = fwl_manifest_verify(buf, len, root_key, 32, 0, VEC_NOW, &m);
        if (s == FWL_OK || s == FWL_ERR_INTERNAL) CHECK_STATUS(s, FWL_ERR_MALFORMED);
        fwl_manifest_free(m);
        s = fwl_notice_parse(buf, len, &n);
        if (s != FWL_OK && s != FWL_ERR_NOTICE_MALFORMED) CHECK_STATUS(s, FWL_ERR_NOTICE_MALFORMED);
        fwl_notice_free(n);
        s = fwl_notice_verify(buf, len, root_key, 32, 0, VEC_NOW, NULL, &m);
        if (s == FWL_OK || s == FWL_ERR_INTERNAL) CHECK_STATUS(s, FWL_ERR_NOTICE_MALFORMED);
        fwl_manifest_free(m);
    }
    h_passed++;
    free(buf);
    free(signed_);
}

struct worker {
    const fwl_manifest *m;
    const uint8_t *image;
    int failures;
};

static void *worker_main(void *arg) {
    struct worker *w = arg;
    int round;
    char msg[256];
    for (round = 0; round < 50; round++) {
        char version[32];
        if (stream(w->m, w->image, (size_t)VEC_IMAGE_SIZE, 100 + (size_t)round) != FWL_OK) w->failures++;
        if (fwl_manifest_version(w->m, version, sizeof version, NULL) != FWL_OK) w->failures++;
        /* Each thread sees its own last error. */
        if (fwl_manifest_version(w->m, version, 2, NULL) != FWL_ERR_BUFFER_TOO_SMALL) w->failures++;
        fwl_last_error(msg, sizeof msg);
        if (strncmp(msg, "fwl_manifest_version:", 21) != 0) w->failures++;
    }
    return NULL;
}

static void test_threads(void) {
    enum { THREADS = 4 };
    fwl_manifest *m = verified("lamp-1.1.0");
    uint8_t *image = vector_image(0);
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    int i;
    if (m == NULL) return;
    for (i = 0; i < THREADS; i++) {
        workers[i].m = m;
        workers[i].image = image;
        workers[i].failures = 0;
        CHECK(pthread_create(&threads[i], NULL, worker_main, &workers[i]) == 0);
    }
    for (i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        CHECK(workers[i].failures == 0);
    }
    fwl_manifest_free(m);
    free(image);
}

/* ------------------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    void (*run)(void);
} groups[] = {
    {"status", test_status},   {"manifest", test_manifest}, {"negative", test_negative},
    {"image", test_image},     {"policy", test_policy},     {"notice", test_notice},
    {"args", test_args},       {"garbage", test_garbage},   {"threads", test_threads},
};

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "all";
    size_t i;
    int ran = 0;
    load_keys();
    for (i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        if (strcmp(which, "all") == 0 || strcmp(which, groups[i].name) == 0) {
            groups[i].run();
            ran++;
        }
    }
    if (ran == 0) {
        fprintf(stderr, "unknown group %s\n", which);
        return 2;
    }
    return h_finish(which);
}
