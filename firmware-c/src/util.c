#include "util.h"

#include <string.h>

int fwl_strcpy(char *dst, size_t cap, const char *src) {
    size_t n;
    if (cap == 0) return -1;
    n = strlen(src);
    if (n >= cap) {
        memcpy(dst, src, cap - 1);
        dst[cap - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

void fwl_hex_encode(const uint8_t *bytes, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

static int nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

long fwl_hex_decode(const char *hex, uint8_t *out, size_t cap) {
    size_t n = strlen(hex), i;
    if (n % 2 != 0 || n / 2 > cap) return -1;
    for (i = 0; i < n / 2; i++) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    return (long)(n / 2);
}

int fwl_url_host_port(const char *url, char *host, size_t host_cap, uint16_t *port,
                      uint16_t default_port) {
    const char *rest = strstr(url, "://"), *end, *colon = NULL, *h;
    size_t hn;
    unsigned long p = default_port;
    if (rest == NULL) return -1;
    rest += 3;
    end = rest + strcspn(rest, "/?#");
    if (*rest == '[') {
        const char *close = memchr(rest, ']', (size_t)(end - rest));
        if (close == NULL) return -1;
        h = rest + 1;
        hn = (size_t)(close - h);
        if (close + 1 < end) {
            if (close[1] != ':') return -1;
            colon = close + 1;
        }
    } else {
        const char *c;
        h = rest;
        for (c = rest; c < end; c++)
            if (*c == ':') colon = c;
        hn = (size_t)((colon != NULL ? colon : end) - h);
    }
    if (memchr(h, '@', hn) != NULL) return -1; /* no user info */
    if (colon != NULL) {
        const char *c;
        if (colon + 1 >= end) return -1;
        p = 0;
        for (c = colon + 1; c < end; c++) {
            if (*c < '0' || *c > '9') return -1;
            p = p * 10 + (unsigned long)(*c - '0');
            if (p > 65535) return -1;
        }
        if (p == 0) return -1;
    }
    if (hn == 0 || hn >= host_cap) return -1;
    memcpy(host, h, hn);
    host[hn] = '\0';
    *port = (uint16_t)p;
    return 0;
}

bool fwl_url_is_loopback(const char *url) {
    char host[256];
    uint16_t port;
    if (fwl_url_host_port(url, host, sizeof host, &port, 1) != 0) return false;
    if (strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0) return true;
    if (strncmp(host, "127.", 4) == 0) {
        const char *c;
        for (c = host + 4; *c != '\0'; c++)
            if (!((*c >= '0' && *c <= '9') || *c == '.')) return false;
        return true;
    }
    return false;
}
