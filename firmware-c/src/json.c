/* A bounded JSON reader and writer. See include/fwl_json.h. */
#include "fwl_json.h"

#include <stdio.h>
#include <string.h>

/* ---- reader ------------------------------------------------------------------------------ */

typedef struct parser {
    const char *s;
    size_t len;
    size_t pos;
    fwl_json_tok *toks;
    size_t cap;
    size_t count;
    int err;
} parser;

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int fail(parser *p, int err) {
    if (p->err == 0) p->err = err;
    return -1;
}

static long new_tok(parser *p, fwl_json_type type) {
    fwl_json_tok *t;
    if (p->count >= p->cap) return fail(p, FWL_JSON_ERR_TOO_MANY);
    t = &p->toks[p->count];
    t->type = (uint8_t)type;
    t->start = (uint32_t)p->pos;
    t->end = (uint32_t)p->pos;
    t->next = 0;
    t->count = 0;
    return (long)p->count++;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t need, i;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (n < need + 1) return 0;
    for (i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return need + 1;
}

static int parse_string(parser *p) {
    long t = new_tok(p, FWL_JSON_STRING);
    if (t < 0) return -1;
    p->pos++; /* opening quote */
    p->toks[t].start = (uint32_t)p->pos;
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->toks[t].end = (uint32_t)p->pos;
            p->pos++;
            p->toks[t].next = (uint32_t)p->count;
            return 0;
        }
        if (c < 0x20) return fail(p, FWL_JSON_ERR_SYNTAX);
        if (c == '\\') {
            char e;
            if (p->pos + 1 >= p->len) return fail(p, FWL_JSON_ERR_SYNTAX);
            e = p->s[p->pos + 1];
            if (e == 'u') {
                int i;
                if (p->pos + 6 > p->len) return fail(p, FWL_JSON_ERR_SYNTAX);
                for (i = 2; i < 6; i++)
                    if (hexval(p->s[p->pos + (size_t)i]) < 0) return fail(p, FWL_JSON_ERR_SYNTAX);
                p->pos += 6;
            } else if (strchr("\"\\/bfnrt", e) != NULL && e != '\0') {
                p->pos += 2;
            } else {
                return fail(p, FWL_JSON_ERR_SYNTAX);
            }
            continue;
        }
        {
            size_t n = utf8_seq((const unsigned char *)p->s + p->pos, p->len - p->pos);
            if (n == 0) return fail(p, FWL_JSON_ERR_SYNTAX);
            p->pos += n;
        }
    }
    return fail(p, FWL_JSON_ERR_SYNTAX);
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int parse_number(parser *p) {
    long t = new_tok(p, FWL_JSON_NUMBER);
    size_t i;
    if (t < 0) return -1;
    i = p->pos;
    if (i < p->len && p->s[i] == '-') i++;
    if (i >= p->len) return fail(p, FWL_JSON_ERR_SYNTAX);
    if (p->s[i] == '0') {
        i++;
    } else if (is_digit(p->s[i])) {
        while (i < p->len && is_digit(p->s[i])) i++;
    } else {
        return fail(p, FWL_JSON_ERR_SYNTAX);
    }
    if (i < p->len && p->s[i] == '.') {
        i++;
        if (i >= p->len || !is_digit(p->s[i])) return fail(p, FWL_JSON_ERR_SYNTAX);
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->len || !is_digit(p->s[i])) return fail(p, FWL_JSON_ERR_SYNTAX);
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    p->pos = i;
    p->toks[t].end = (uint32_t)i;
    p->toks[t].next = (uint32_t)p->count;
    return 0;
}

static int parse_literal(parser *p, const char *word, fwl_json_type type) {
    size_t n = strlen(word);
    long t;
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, FWL_JSON_ERR_SYNTAX);
    t = new_tok(p, type);
    if (t < 0) return -1;
    p->pos += n;
    p->toks[t].end = (uint32_t)p->pos;
    p->toks[t].next = (uint32_t)p->count;
    return 0;
}

static int parse_value(parser *p, int depth);

static int parse_container(parser *p, int depth, int object) {
    long t = new_tok(p, object ? FWL_JSON_OBJECT : FWL_JSON_ARRAY);
    char close = object ? '}' : ']';
    if (t < 0) return -1;
    if (depth >= FWL_JSON_MAX_DEPTH) return fail(p, FWL_JSON_ERR_TOO_DEEP);
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            skip_ws(p);
            if (object) {
                if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, FWL_JSON_ERR_SYNTAX);
                if (parse_string(p) != 0) return -1;
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':') return fail(p, FWL_JSON_ERR_SYNTAX);
                p->pos++;
            }
            if (parse_value(p, depth + 1) != 0) return -1;
            p->toks[t].count++;
            skip_ws(p);
            if (p->pos >= p->len) return fail(p, FWL_JSON_ERR_SYNTAX);
            if (p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->s[p->pos] == close) {
                p->pos++;
                break;
            }
            return fail(p, FWL_JSON_ERR_SYNTAX);
        }
    }
    p->toks[t].end = (uint32_t)p->pos;
    p->toks[t].next = (uint32_t)p->count;
    return 0;
}

static int parse_value(parser *p, int depth) {
    char c;
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, FWL_JSON_ERR_SYNTAX);
    c = p->s[p->pos];
    switch (c) {
    case '{': return parse_container(p, depth, 1);
    case '[': return parse_container(p, depth, 0);
    case '"': return parse_string(p);
    case 't': return parse_literal(p, "true", FWL_JSON_TRUE);
    case 'f': return parse_literal(p, "false", FWL_JSON_FALSE);
    case 'n': return parse_literal(p, "null", FWL_JSON_NULL);
    default:
        if (c == '-' || is_digit(c)) return parse_number(p);
        return fail(p, FWL_JSON_ERR_SYNTAX);
    }
}

int fwl_json_parse(fwl_json_doc *doc, const char *text, size_t len, fwl_json_tok *toks,
                   size_t cap, size_t *err_at) {
    parser p;
    if (doc == NULL || text == NULL || toks == NULL) return FWL_JSON_ERR_SYNTAX;
    memset(doc, 0, sizeof *doc);
    if (len > 0x7FFFFFFFu) return FWL_JSON_ERR_TOO_LONG;
    memset(&p, 0, sizeof p);
    p.s = text;
    p.len = len;
    p.toks = toks;
    p.cap = cap;
    if (parse_value(&p, 0) == 0) {
        skip_ws(&p);
        if (p.pos != p.len) fail(&p, FWL_JSON_ERR_SYNTAX);
    }
    if (p.err != 0) {
        if (err_at != NULL) *err_at = p.pos;
        return p.err;
    }
    doc->text = text;
    doc->len = len;
    doc->toks = toks;
    doc->count = p.count;
    return FWL_JSON_OK;
}

int fwl_json_type_of(const fwl_json_doc *doc, int tok) {
    if (doc == NULL || tok < 0 || (size_t)tok >= doc->count) return 0;
    return doc->toks[tok].type;
}

/* Compares the raw string token with `key` after decoding, without a buffer. */
static int key_equals(const fwl_json_doc *doc, int tok, const char *key) {
    char tmp[128];
    size_t n;
    const fwl_json_tok *t = &doc->toks[tok];
    /* Fast path: no escapes. */
    if (memchr(doc->text + t->start, '\\', t->end - t->start) == NULL) {
        n = t->end - t->start;
        return strlen(key) == n && memcmp(doc->text + t->start, key, n) == 0;
    }
    if (fwl_json_string(doc, tok, tmp, sizeof tmp, &n) != 0) return 0;
    return strcmp(tmp, key) == 0;
}

int fwl_json_get(const fwl_json_doc *doc, int obj, const char *key) {
    uint32_t i, k;
    if (fwl_json_type_of(doc, obj) != FWL_JSON_OBJECT || key == NULL) return -1;
    k = (uint32_t)obj + 1;
    for (i = 0; i < doc->toks[obj].count; i++) {
        uint32_t v = k + 1;
        if (key_equals(doc, (int)k, key)) return (int)v;
        k = doc->toks[v].next;
    }
    return -1;
}

int fwl_json_at(const fwl_json_doc *doc, int arr, size_t i) {
    uint32_t k;
    size_t j;
    if (fwl_json_type_of(doc, arr) != FWL_JSON_ARRAY || i >= doc->toks[arr].count) return -1;
    k = (uint32_t)arr + 1;
    for (j = 0; j < i; j++) k = doc->toks[k].next;
    return (int)k;
}

static int put(char *out, size_t cap, size_t *n, uint32_t cp) {
    unsigned char b[4];
    size_t k, m;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        m = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        m = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        m = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        m = 4;
    }
    if (*n + m >= cap) return -1; /* keep room for the NUL */
    for (k = 0; k < m; k++) out[(*n)++] = (char)b[k];
    return 0;
}

static uint32_t hex4(const char *s) {
    return (uint32_t)((hexval(s[0]) << 12) | (hexval(s[1]) << 8) | (hexval(s[2]) << 4) |
                      hexval(s[3]));
}

int fwl_json_string(const fwl_json_doc *doc, int tok, char *out, size_t cap, size_t *out_len) {
    const fwl_json_tok *t;
    size_t i, n = 0;
    if (out == NULL || cap == 0) return -1;
    out[0] = '\0';
    if (fwl_json_type_of(doc, tok) != FWL_JSON_STRING) return -1;
    t = &doc->toks[tok];
    i = t->start;
    while (i < t->end) {
        char c = doc->text[i];
        if (c != '\\') {
            if (n + 1 >= cap) goto too_long;
            out[n++] = c;
            i++;
            continue;
        }
        c = doc->text[i + 1];
        i += 2;
        switch (c) {
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
            uint32_t cp = hex4(doc->text + i);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (i + 6 > t->end || doc->text[i] != '\\' || doc->text[i + 1] != 'u')
                    goto bad;
                lo = hex4(doc->text + i + 2);
                if (lo < 0xDC00 || lo > 0xDFFF) goto bad;
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                goto bad;
            }
            if (cp == 0) goto bad;
            if (put(out, cap, &n, cp) != 0) goto too_long;
            continue;
        }
        default: break; /* '"', '\\', '/' stand for themselves */
        }
        if (n + 1 >= cap) goto too_long;
        out[n++] = c;
    }
    out[n] = '\0';
    if (out_len != NULL) *out_len = n;
    return 0;
too_long:
bad:
    out[0] = '\0';
    return -1;
}

int fwl_json_u64(const fwl_json_doc *doc, int tok, uint64_t *out) {
    const fwl_json_tok *t;
    uint64_t v = 0;
    uint32_t i;
    if (out == NULL || fwl_json_type_of(doc, tok) != FWL_JSON_NUMBER) return -1;
    t = &doc->toks[tok];
    for (i = t->start; i < t->end; i++) {
        char c = doc->text[i];
        if (!is_digit(c)) return -1; /* sign, fraction or exponent */
        if (v > (UINT64_MAX - (uint64_t)(c - '0')) / 10) return -1;
        v = v * 10 + (uint64_t)(c - '0');
    }
    *out = v;
    return 0;
}

int fwl_json_bool(const fwl_json_doc *doc, int tok, bool *out) {
    int type = fwl_json_type_of(doc, tok);
    if (out == NULL || (type != FWL_JSON_TRUE && type != FWL_JSON_FALSE)) return -1;
    *out = type == FWL_JSON_TRUE;
    return 0;
}

/* ---- writer ------------------------------------------------------------------------------ */

void fwl_jw_init(fwl_jw *w, char *buf, size_t cap) {
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
    if (cap > 0) buf[0] = '\0';
}

static void raw(fwl_jw *w, const char *s, size_t n) {
    if (w->overflow) return;
    if (w->cap == 0 || w->len + n >= w->cap) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

/* Before a value or key: a comma when the container already has an item. */
static void item(fwl_jw *w) {
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth > 0 && w->depth < 32) {
        uint32_t bit = 1u << (unsigned)w->depth;
        if (w->has_items & bit) raw(w, ",", 1);
        w->has_items |= bit;
    }
}

static void open_c(fwl_jw *w, const char *c) {
    item(w);
    raw(w, c, 1);
    w->depth++;
    if (w->depth < 32) w->has_items &= ~(1u << (unsigned)w->depth);
}

static void close_c(fwl_jw *w, const char *c) {
    if (w->depth <= 0) {
        w->overflow = true;
        return;
    }
    w->depth--;
    raw(w, c, 1);
}

void fwl_jw_object(fwl_jw *w) { open_c(w, "{"); }
void fwl_jw_object_end(fwl_jw *w) { close_c(w, "}"); }
void fwl_jw_array(fwl_jw *w) { open_c(w, "["); }
void fwl_jw_array_end(fwl_jw *w) { close_c(w, "]"); }

static void quoted(fwl_jw *w, const char *s, size_t n) {
    size_t i, run = 0;
    raw(w, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c < 0x20 || c == 0x7F) {
            snprintf(u, sizeof u, "\\u%04x", (unsigned)c);
            esc = u;
        }
        if (esc != NULL) {
            raw(w, s + run, i - run);
            raw(w, esc, strlen(esc));
            run = i + 1;
        }
    }
    raw(w, s + run, n - run);
    raw(w, "\"", 1);
}

void fwl_jw_key(fwl_jw *w, const char *key) {
    item(w);
    quoted(w, key, strlen(key));
    raw(w, ":", 1);
    w->after_key = true;
}

void fwl_jw_string_n(fwl_jw *w, const char *s, size_t n) {
    item(w);
    quoted(w, s, n);
}

void fwl_jw_string(fwl_jw *w, const char *s) { fwl_jw_string_n(w, s, strlen(s)); }

void fwl_jw_hex(fwl_jw *w, const uint8_t *bytes, size_t n) {
    static const char digits[] = "0123456789abcdef";
    size_t i;
    item(w);
    raw(w, "\"", 1);
    for (i = 0; i < n; i++) {
        char two[2];
        two[0] = digits[bytes[i] >> 4];
        two[1] = digits[bytes[i] & 15];
        raw(w, two, 2);
    }
    raw(w, "\"", 1);
}

void fwl_jw_u64(fwl_jw *w, uint64_t v) {
    char tmp[24];
    size_t n = 0, i;
    char out[24];
    item(w);
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v != 0);
    for (i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    raw(w, out, n);
}

void fwl_jw_bool(fwl_jw *w, bool v) {
    item(w);
    if (v) raw(w, "true", 4);
    else raw(w, "false", 5);
}

void fwl_jw_null(fwl_jw *w) {
    item(w);
    raw(w, "null", 4);
}

long fwl_jw_finish(fwl_jw *w) {
    if (w->overflow || w->depth != 0 || w->after_key) return -1;
    return (long)w->len;
}
