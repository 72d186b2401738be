/* Small bounded helpers shared by the agent core and the ports. */
#ifndef FWL_UTIL_H
#define FWL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Copies `src` into `dst` (`cap` bytes, NUL included), cutting to fit. Returns 0, or -1 when
 *  it was cut. */
int fwl_strcpy(char *dst, size_t cap, const char *src);

/** Lowercase hex of `n` bytes into `out` (2n+1 bytes). */
void fwl_hex_encode(const uint8_t *bytes, size_t n, char *out);

/** Decodes hex text (even length, both cases) into at most `cap` bytes. Returns the byte count,
 *  or -1 on a bad character, an odd length or too little room. */
long fwl_hex_decode(const char *hex, uint8_t *out, size_t cap);

/** Splits `scheme://host[:port][/...]` into `host` (brackets of an IPv6 literal removed) and
 *  `port` (`default_port` when absent). 0, or -1 when it does not parse or does not fit. */
int fwl_url_host_port(const char *url, char *host, size_t host_cap, uint16_t *port,
                      uint16_t default_port);

/** Whether the URL's host is loopback: localhost, 127.0.0.0/8 or ::1. */
bool fwl_url_is_loopback(const char *url);

#endif
