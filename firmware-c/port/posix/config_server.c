/* Configuration mode: a minimal HTTP/1.1 server on loopback. See config_server.h. */
#define _POSIX_C_SOURCE 200809L

#include "config_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fwl_bundle.h"
#include "fwl_config_form.h"
#include "hal_posix.h"
#include "util.h"

#define HEAD_MAX 8192
#define BODY_MAX (128 * 1024)

static char g_head[HEAD_MAX + 1];
static char g_body[BODY_MAX + 1];
static char g_field[FWL_BUNDLE_MAX + 1];
static char g_json[FWL_BUNDLE_MAX + 1];
static char g_page[16384];
static fwl_bundle g_bundle;

static int send_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static void respond(int fd, int code, const char *reason, const char *type, const char *body) {
    char head[256];
    size_t len = strlen(body);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %lu\r\n"
                     "Cache-Control: no-store\r\nX-Frame-Options: DENY\r\nConnection: close\r\n\r\n",
                     code, reason, type, (unsigned long)len);
    if (n < 0 || (size_t)n >= sizeof head) return;
    if (send_all(fd, head, (size_t)n) == 0) (void)send_all(fd, body, len);
}

static int read_file_into(const char *path, char *buf, size_t cap, size_t *len) {
    FILE *f = fopen(path, "rb");
    size_t n;
    if (f == NULL) return -1;
    n = fread(buf, 1, cap, f);
    if (ferror(f) || !feof(f) || n >= cap) { /* unreadable or too large */
        fclose(f);
        return -1;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return 0;
}

static int save_bundle(const char *path, const char *json, size_t len) {
    char dir[FWL_POSIX_PATH];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) return fwl_posix_write_atomic(".", path, json, len, 0600);
    if ((size_t)(slash - path) >= sizeof dir) return -1;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    if (dir[0] == '\0') strcpy(dir, "/");
    return fwl_posix_write_atomic(dir, slash + 1, json, len, 0600);
}

/* Handles POST /configure; returns 1 when saved. */
static int configure(int fd, const fwl_config_options *o, const char *body) {
    char err[200];
    size_t len = 0;
    long n;
    bool have = read_file_into(o->bundle_path, g_json, sizeof g_json, &len) == 0;
    if (fwl_config_apply(body, have ? g_json : NULL, len, &g_bundle, g_field, sizeof g_field, err,
                         sizeof err) != 0) {
        fwl_config_page(g_page, sizeof g_page, o->device_id, err, true);
        respond(fd, 400, "Bad Request", "text/html; charset=utf-8", g_page);
        return 0;
    }
    n = fwl_bundle_write(&g_bundle, g_json, sizeof g_json);
    if (n < 0 || save_bundle(o->bundle_path, g_json, (size_t)n) != 0) {
        fwl_config_page(g_page, sizeof g_page, o->device_id, "The configuration could not be saved.",
                        true);
        respond(fd, 500, "Internal Server Error", "text/html; charset=utf-8", g_page);
        return 0;
    }
    fwl_config_page(g_page, sizeof g_page, g_bundle.device_id,
                    "Saved. The device now starts in normal mode.", false);
    respond(fd, 200, "OK", "text/html; charset=utf-8", g_page);
    printf("configuration saved to %s (device %s)\n", o->bundle_path, g_bundle.device_id);
    fflush(stdout);
    return 1;
}

static const char *header_value(const char *head, const char *name, char *out, size_t cap) {
    const char *p = strstr(head, "\r\n");
    size_t nl = strlen(name);
    while (p != NULL && p[2] != '\r' && p[2] != '\0') {
        const char *line = p + 2, *end = strstr(line, "\r\n");
        if (end == NULL) break;
        if ((size_t)(end - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            size_t n;
            while (*v == ' ' || *v == '\t') v++;
            n = (size_t)(end - v);
            while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
            if (n >= cap) return NULL;
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
        p = end;
    }
    return NULL;
}

/* One connection. Returns 1 when the configuration was saved. */
static int handle(int fd, const fwl_config_options *o, uint16_t port) {
    struct timeval tv;
    size_t have = 0, body_len = 0, head_len;
    char method[8], path[256], host[128], expect1[64], expect2[64], clen[24];
    char *end = NULL;
    unsigned long want = 0;

    tv.tv_sec = 10;
    tv.tv_usec = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    while (end == NULL) {
        ssize_t n;
        if (have >= HEAD_MAX) {
            respond(fd, 431, "Request Header Fields Too Large", "text/plain", "too large\n");
            return 0;
        }
        n = recv(fd, g_head + have, HEAD_MAX - have, 0);
        if (n <= 0) return 0;
        have += (size_t)n;
        g_head[have] = '\0';
        end = strstr(g_head, "\r\n\r\n");
    }
    head_len = (size_t)(end - g_head) + 4;
    if (sscanf(g_head, "%7s %255s HTTP/1.%*c", method, path) != 2) {
        respond(fd, 400, "Bad Request", "text/plain", "bad request\n");
        return 0;
    }
    /* Only this loopback origin (a DNS-rebinding page on another name gets nothing). */
    snprintf(expect1, sizeof expect1, "127.0.0.1:%u", (unsigned)port);
    snprintf(expect2, sizeof expect2, "localhost:%u", (unsigned)port);
    if (header_value(g_head, "Host", host, sizeof host) == NULL ||
        (strcmp(host, expect1) != 0 && strcmp(host, expect2) != 0)) {
        respond(fd, 403, "Forbidden", "text/plain", "wrong Host\n");
        return 0;
    }
    if (strcmp(method, "GET") == 0 && (strcmp(path, "/") == 0 || strncmp(path, "/?", 2) == 0)) {
        fwl_config_page(g_page, sizeof g_page, o->device_id, NULL, false);
        respond(fd, 200, "OK", "text/html; charset=utf-8", g_page);
        return 0;
    }
    if (strcmp(path, "/configure") != 0) {
        respond(fd, 404, "Not Found", "text/plain", "not found\n");
        return 0;
    }
    if (strcmp(method, "POST") != 0) {
        respond(fd, 405, "Method Not Allowed", "text/plain", "use POST\n");
        return 0;
    }
    if (header_value(g_head, "Content-Length", clen, sizeof clen) == NULL ||
        clen[strspn(clen, "0123456789")] != '\0' || clen[0] == '\0' || strlen(clen) > 9) {
        respond(fd, 411, "Length Required", "text/plain", "Content-Length required\n");
        return 0;
    }
    want = strtoul(clen, NULL, 10);
    if (want > BODY_MAX) {
        respond(fd, 413, "Payload Too Large", "text/plain", "too large\n");
        return 0;
    }
    body_len = have - head_len;
    if (body_len > want) body_len = want;
    memcpy(g_body, g_head + head_len, body_len);
    while (body_len < want) {
        ssize_t n = recv(fd, g_body + body_len, want - body_len, 0);
        if (n <= 0) return 0;
        body_len += (size_t)n;
    }
    g_body[body_len] = '\0';
    if (strlen(g_body) != body_len) {
        respond(fd, 400, "Bad Request", "text/plain", "bad body\n");
        return 0;
    }
    return configure(fd, o, g_body);
}

int fwl_config_serve(const fwl_config_options *o) {
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    int one = 1, fd;
    uint16_t port;
    char url[128];
    struct timespec start;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(o->port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only */
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &alen) != 0) {
        fprintf(stderr, "error: configuration server on 127.0.0.1:%u: %s\n", (unsigned)o->port,
                strerror(errno));
        close(fd);
        return -1;
    }
    port = ntohs(addr.sin_port);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", (unsigned)port);
    printf("configuration mode: device %s, open %s\n", o->device_id, url);
    {
        char qr[256];
        snprintf(qr, sizeof qr, "%s?device=%s", url, o->device_id);
        if (fwl_qr_print(stdout, qr) != 0) fprintf(stderr, "warning: cannot draw the QR code\n");
    }
    fflush(stdout);
    if (o->port_file != NULL) {
        FILE *f = fopen(o->port_file, "w");
        if (f != NULL) {
            fprintf(f, "%u\n", (unsigned)port);
            fclose(f);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct pollfd pfd;
        int wait_ms = 1000, rc, conn;
        if (o->timeout_s > 0) {
            struct timespec now;
            long elapsed;
            clock_gettime(CLOCK_MONOTONIC, &now);
            elapsed = (long)(now.tv_sec - start.tv_sec) * 1000L +
                      (now.tv_nsec - start.tv_nsec) / 1000000L;
            if (elapsed >= (long)o->timeout_s * 1000L) {
                printf("configuration mode: timed out\n");
                close(fd);
                return 1;
            }
            if ((long)o->timeout_s * 1000L - elapsed < wait_ms)
                wait_ms = (int)((long)o->timeout_s * 1000L - elapsed);
        }
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        rc = poll(&pfd, 1, wait_ms);
        if (rc < 0 && errno != EINTR) break;
        if (rc <= 0) continue;
        conn = accept(fd, NULL, NULL);
        if (conn < 0) continue;
        rc = handle(conn, o, port);
        shutdown(conn, SHUT_WR);
        close(conn);
        if (rc == 1) {
            close(fd);
            return 0;
        }
    }
    close(fd);
    return -1;
}
