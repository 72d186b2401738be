/*
 * fwl_json.h — a small, bounded JSON reader and writer (RFC 8259) for the device agent.
 *
 * Reader: fwl_json_parse() checks a whole document and indexes it into a caller-provided token
 * array (no heap, recursion bounded by FWL_JSON_MAX_DEPTH). Tokens stay valid as long as the
 * text does. Helpers find object members, array elements and decode strings (escapes, \uXXXX
 * with surrogate pairs) into caller buffers.
 *
 * Writer: fwl_jw_* append to a caller buffer and never write past it; fwl_jw_finish() reports
 * whether everything fitted.
 */
#ifndef FWL_JSON_H
#define FWL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FWL_JSON_MAX_DEPTH 16

typedef enum fwl_json_type {
    FWL_JSON_OBJECT = 1,
    FWL_JSON_ARRAY,
    FWL_JSON_STRING,
    FWL_JSON_NUMBER,
    FWL_JSON_TRUE,
    FWL_JSON_FALSE,
    FWL_JSON_NULL
} fwl_json_type;

/** One value. For a string, [start, end) is the raw text between the quotes. */
typedef struct fwl_json_tok {
    uint8_t type;   /**< fwl_json_type */
    uint32_t start; /**< offset of the value's first byte */
    uint32_t end;   /**< offset after the value's last byte */
    uint32_t next;  /**< index of the first token after this value (and its children) */
    uint32_t count; /**< object: members; array: elements */
} fwl_json_tok;

typedef struct fwl_json_doc {
    const char *text;
    size_t len;
    fwl_json_tok *toks;
    size_t count; /**< tokens used; token 0 is the root */
} fwl_json_doc;

/** Errors of fwl_json_parse. */
enum {
    FWL_JSON_OK = 0,
    FWL_JSON_ERR_SYNTAX = -1,
    FWL_JSON_ERR_TOO_MANY = -2, /**< more values than tokens */
    FWL_JSON_ERR_TOO_DEEP = -3,
    FWL_JSON_ERR_TOO_LONG = -4  /**< text longer than 2^31 bytes */
};

/** Parses `len` bytes of `text` (a whole document, surrounding whitespace allowed) into `toks`
 *  (`cap` of them). Returns FWL_JSON_OK, or an error with `*err_at` (may be NULL) set to the
 *  offset where it was found. */
int fwl_json_parse(fwl_json_doc *doc, const char *text, size_t len, fwl_json_tok *toks,
                   size_t cap, size_t *err_at);

/** The token index of member `key` of the object at `obj`, or -1 (not an object, no such key).
 *  Keys are compared after decoding; the first match wins. */
int fwl_json_get(const fwl_json_doc *doc, int obj, const char *key);

/** The token index of element `i` of the array at `arr`, or -1. */
int fwl_json_at(const fwl_json_doc *doc, int arr, size_t i);

/** The type of token `tok`, or 0 when `tok` is out of range. */
int fwl_json_type_of(const fwl_json_doc *doc, int tok);

/** Decodes the string at `tok` into `out` (NUL-terminated; `cap` includes the NUL). Returns 0,
 *  or -1 when `tok` is not a string, the decoded text holds a NUL character or a lone surrogate,
 *  or it does not fit. `*out_len` (may be NULL) receives the decoded length on success. */
int fwl_json_string(const fwl_json_doc *doc, int tok, char *out, size_t cap, size_t *out_len);

/** Reads a non-negative integer without fraction or exponent that fits 64 bits. 0 or -1. */
int fwl_json_u64(const fwl_json_doc *doc, int tok, uint64_t *out);

/** Reads true/false. 0 or -1. */
int fwl_json_bool(const fwl_json_doc *doc, int tok, bool *out);

/* ---- writer ---------------------------------------------------------------------------- */

typedef struct fwl_jw {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
    bool after_key;
    int depth;
    uint32_t has_items; /**< bit d: the container at depth d already holds an item */
} fwl_jw;

void fwl_jw_init(fwl_jw *w, char *buf, size_t cap);
void fwl_jw_object(fwl_jw *w);
void fwl_jw_object_end(fwl_jw *w);
void fwl_jw_array(fwl_jw *w);
void fwl_jw_array_end(fwl_jw *w);
/** An object member's key; the next call writes its value. */
void fwl_jw_key(fwl_jw *w, const char *key);
void fwl_jw_string(fwl_jw *w, const char *s);
void fwl_jw_string_n(fwl_jw *w, const char *s, size_t n);
/** `n` bytes as a lowercase hex string. */
void fwl_jw_hex(fwl_jw *w, const uint8_t *bytes, size_t n);
void fwl_jw_u64(fwl_jw *w, uint64_t v);
void fwl_jw_bool(fwl_jw *w, bool v);
void fwl_jw_null(fwl_jw *w);
/** The length written (without the NUL, which is always written when `cap` > 0), or -1 when
 *  the output did not fit or the containers are unbalanced. */
long fwl_jw_finish(fwl_jw *w);

#ifdef __cplusplus
}
#endif

#endif /* FWL_JSON_H */
