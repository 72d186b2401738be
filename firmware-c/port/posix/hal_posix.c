/* The POSIX port of fwl_hal. See hal_posix.h. */
#define _POSIX_C_SOURCE 200809L

#include "hal_posix.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sha256.h"
#include "util.h"

#define BOOT_FILE "bootloader"
#define CRASH_ENV "FWLEDGER_C_CRASH_AT"
#define CRASH_EXIT_CODE 86

static void plog(fwl_posix *p, int level, const char *fmt, ...) {
    char line[512];
    va_list ap;
    static const char *const names[] = {"", "ERROR", "WARN", "INFO", "DEBUG"};
    if (p->opt.quiet && level > FWL_LOG_WARN) return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[fwledger-device-c %s] %s %s\n", p->bundle ? p->bundle->device_id : "-",
            names[level >= 1 && level <= 4 ? level : 0], line);
    fflush(stderr);
}

static int path_of(const fwl_posix *p, const char *name, char *out, size_t cap) {
    int n = snprintf(out, cap, "%s/%s", p->dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* ---- files ---------------------------------------------------------------------------------- */

static int write_all(int fd, const void *data, size_t len) {
    const uint8_t *b = (const uint8_t *)data;
    while (len > 0) {
        ssize_t n = write(fd, b, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    int rc;
    if (fd < 0) return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int fwl_posix_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                           unsigned mode) {
    char tmp[FWL_POSIX_PATH], final_path[FWL_POSIX_PATH];
    int fd, n1, n2;
    n1 = snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    n2 = snprintf(final_path, sizeof final_path, "%s/%s", dir, name);
    if (n1 < 0 || (size_t)n1 >= sizeof tmp || n2 < 0 || (size_t)n2 >= sizeof final_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    if (fd < 0) return -1;
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, final_path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return fsync_dir(dir);
}

/* Reads DIR/NAME into buf (at most cap bytes). 0, FWL_HAL_ERR_NOT_FOUND, _TOO_BIG or _ERR. */
static int read_file(const fwl_posix *p, const char *name, uint8_t *buf, size_t cap,
                     size_t *len) {
    char path[FWL_POSIX_PATH];
    struct stat st;
    size_t got = 0;
    int fd;
    if (path_of(p, name, path, sizeof path) != 0) return FWL_HAL_ERR;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? FWL_HAL_ERR_NOT_FOUND : FWL_HAL_ERR;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return FWL_HAL_ERR;
    }
    if ((uint64_t)st.st_size > cap) {
        close(fd);
        return FWL_HAL_ERR_TOO_BIG;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            close(fd);
            return FWL_HAL_ERR;
        }
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return FWL_HAL_OK;
}

/* ---- boot loader emulation ------------------------------------------------------------------ */

static int store_boot(fwl_posix *p) {
    char text[128];
    int n = snprintf(text, sizeof text, "active=%c\ntrial=%d\nattempts=%u\npending=%c\n",
                     p->active == FWL_SLOT_A ? 'a' : 'b', p->trial ? 1 : 0,
                     (unsigned)p->attempts, p->pending < 0 ? '-' : (p->pending == 0 ? 'a' : 'b'));
    if (n < 0 || (size_t)n >= sizeof text) return -1;
    if (fwl_posix_write_atomic(p->dir, BOOT_FILE, text, (size_t)n, 0644) != 0) {
        plog(p, FWL_LOG_ERROR, "%s/%s: %s", p->dir, BOOT_FILE, strerror(errno));
        return -1;
    }
    return 0;
}

static int load_boot(fwl_posix *p) {
    uint8_t buf[256];
    size_t len = 0;
    char a = 'a', pend = '-';
    int trial = 0;
    unsigned attempts = 0;
    int rc = read_file(p, BOOT_FILE, buf, sizeof buf - 1, &len);
    p->active = FWL_SLOT_A;
    p->trial = false;
    p->attempts = 0;
    p->pending = -1;
    if (rc == FWL_HAL_ERR_NOT_FOUND) return 0;
    if (rc != FWL_HAL_OK) return -1;
    buf[len] = '\0';
    if (sscanf((const char *)buf, "active=%c trial=%d attempts=%u pending=%c", &a, &trial,
               &attempts, &pend) != 4 ||
        (a != 'a' && a != 'b') || (pend != 'a' && pend != 'b' && pend != '-')) {
        plog(p, FWL_LOG_ERROR, "%s/%s is corrupt", p->dir, BOOT_FILE);
        return -1;
    }
    p->active = a == 'a' ? FWL_SLOT_A : FWL_SLOT_B;
    p->trial = trial != 0;
    p->attempts = attempts;
    p->pending = pend == '-' ? -1 : (pend == 'a' ? 0 : 1);
    return 0;
}

/* What a boot loader does at power-on. */
static int boot_loader(fwl_posix *p) {
    if (load_boot(p) != 0) return -1;
    if (p->pending >= 0) {
        p->active = (fwl_slot)p->pending;
        p->pending = -1;
        p->trial = true;
        p->attempts = 0;
    }
    if (p->trial) p->attempts++;
    return store_boot(p);
}

static int h_boot_info(void *ctx, fwl_boot_info *out) {
    fwl_posix *p = (fwl_posix *)ctx;
    out->running = p->active;
    out->trial = p->trial;
    out->boot_attempts = p->attempts;
    return FWL_HAL_OK;
}

static int h_set_pending(void *ctx, fwl_slot slot) {
    fwl_posix *p = (fwl_posix *)ctx;
    if (slot == p->active) return FWL_HAL_ERR;
    p->pending = (int)slot;
    return store_boot(p) == 0 ? FWL_HAL_OK : FWL_HAL_ERR;
}

static int h_mark_valid(void *ctx) {
    fwl_posix *p = (fwl_posix *)ctx;
    p->trial = false;
    p->attempts = 0;
    return store_boot(p) == 0 ? FWL_HAL_OK : FWL_HAL_ERR;
}

static int h_rollback(void *ctx) {
    fwl_posix *p = (fwl_posix *)ctx;
    p->active = FWL_SLOT_OTHER(p->active);
    p->trial = false;
    p->attempts = 0;
    p->pending = -1;
    return store_boot(p) == 0 ? FWL_HAL_OK : FWL_HAL_ERR;
}

/* ---- slots ---------------------------------------------------------------------------------- */

static const char *slot_file(fwl_slot s) { return s == FWL_SLOT_A ? "slot_a.bin" : "slot_b.bin"; }

long fwl_posix_factory_bytes(const char *model, const char *version, uint8_t *out, size_t cap) {
    char line[400];
    int n = snprintf(line, sizeof line, "fwledger factory image: model %s, version %s\n", model,
                     version);
    size_t i;
    if (n < 0 || (size_t)n >= sizeof line || (size_t)n * 64 > cap) return -1;
    for (i = 0; i < 64; i++) memcpy(out + i * (size_t)n, line, (size_t)n);
    return (long)n * 64;
}

static int h_factory_image(void *ctx, fwl_image_info *out) {
    fwl_posix *p = (fwl_posix *)ctx;
    static uint8_t bytes[64 * 400];
    char path[FWL_POSIX_PATH];
    long n = fwl_posix_factory_bytes(p->bundle->model, p->opt.factory_version, bytes, sizeof bytes);
    if (n < 0) return FWL_HAL_ERR;
    if (fwl_posix_write_atomic(p->dir, slot_file(FWL_SLOT_A), bytes, (size_t)n, 0644) != 0) {
        plog(p, FWL_LOG_ERROR, "factory image: %s", strerror(errno));
        return FWL_HAL_ERR;
    }
    if (path_of(p, slot_file(FWL_SLOT_B), path, sizeof path) == 0) (void)unlink(path);
    memset(out, 0, sizeof *out);
    fwl_strcpy(out->version, sizeof out->version, p->opt.factory_version);
    out->security_version = 0;
    out->size = (uint64_t)n;
    fwl_sha256_digest(bytes, (size_t)n, out->sha256);
    return FWL_HAL_OK;
}

static void close_writer(fwl_posix *p) {
    if (p->writer_fd >= 0) close(p->writer_fd);
    p->writer_fd = -1;
}

static int h_slot_held(void *ctx, fwl_slot slot, uint64_t *len) {
    fwl_posix *p = (fwl_posix *)ctx;
    char path[FWL_POSIX_PATH];
    struct stat st;
    if (path_of(p, slot_file(slot), path, sizeof path) != 0) return FWL_HAL_ERR;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT) return FWL_HAL_ERR;
        *len = 0;
        return FWL_HAL_OK;
    }
    *len = (uint64_t)st.st_size;
    return FWL_HAL_OK;
}

static int h_slot_begin(void *ctx, fwl_slot slot, uint64_t size, uint64_t keep) {
    fwl_posix *p = (fwl_posix *)ctx;
    char path[FWL_POSIX_PATH];
    (void)size;
    if (slot == p->active) {
        plog(p, FWL_LOG_ERROR, "refusing to write the running slot");
        return FWL_HAL_ERR;
    }
    close_writer(p);
    if (path_of(p, slot_file(slot), path, sizeof path) != 0) return FWL_HAL_ERR;
    p->writer_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (p->writer_fd < 0 || ftruncate(p->writer_fd, (off_t)keep) != 0 ||
        lseek(p->writer_fd, (off_t)keep, SEEK_SET) < 0) {
        plog(p, FWL_LOG_ERROR, "%s: %s", path, strerror(errno));
        close_writer(p);
        return FWL_HAL_ERR;
    }
    p->writer_slot = slot;
    return FWL_HAL_OK;
}

static int h_slot_write(void *ctx, fwl_slot slot, const uint8_t *data, size_t len) {
    fwl_posix *p = (fwl_posix *)ctx;
    if (p->writer_fd < 0 || slot != p->writer_slot) return FWL_HAL_ERR;
    if (write_all(p->writer_fd, data, len) != 0) {
        plog(p, FWL_LOG_ERROR, "writing %s: %s", slot_file(slot), strerror(errno));
        return FWL_HAL_ERR;
    }
    return FWL_HAL_OK;
}

static int h_slot_read(void *ctx, fwl_slot slot, uint64_t offset, uint8_t *buf, size_t len,
                       size_t *got) {
    fwl_posix *p = (fwl_posix *)ctx;
    char path[FWL_POSIX_PATH];
    ssize_t n;
    int fd;
    *got = 0;
    if (path_of(p, slot_file(slot), path, sizeof path) != 0) return FWL_HAL_ERR;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? FWL_HAL_OK : FWL_HAL_ERR;
    do {
        n = pread(fd, buf, len, (off_t)offset);
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0) return FWL_HAL_ERR;
    *got = (size_t)n;
    return FWL_HAL_OK;
}

static int h_slot_finalize(void *ctx, fwl_slot slot, const fwl_image_info *image) {
    fwl_posix *p = (fwl_posix *)ctx;
    struct stat st;
    int rc = FWL_HAL_OK;
    if (p->writer_fd < 0 || slot != p->writer_slot) return FWL_HAL_ERR;
    if (fsync(p->writer_fd) != 0 || fstat(p->writer_fd, &st) != 0) rc = FWL_HAL_ERR;
    else if ((uint64_t)st.st_size != image->size) rc = FWL_HAL_ERR_INVALID_IMAGE;
    close_writer(p);
    if (rc == FWL_HAL_OK && fsync_dir(p->dir) != 0) rc = FWL_HAL_ERR;
    return rc;
}

/* ---- persistence ---------------------------------------------------------------------------- */

static int valid_key(const char *key) {
    size_t n = 0;
    for (; key[n] != '\0'; n++)
        if (!((key[n] >= 'a' && key[n] <= 'z') || key[n] == '_') || n >= 15) return 0;
    return n > 0;
}

static int h_state_load(void *ctx, const char *key, uint8_t *buf, size_t cap, size_t *len) {
    fwl_posix *p = (fwl_posix *)ctx;
    if (!valid_key(key)) return FWL_HAL_ERR;
    return read_file(p, key, buf, cap, len);
}

static int h_state_store(void *ctx, const char *key, const uint8_t *data, size_t len) {
    fwl_posix *p = (fwl_posix *)ctx;
    if (!valid_key(key)) return FWL_HAL_ERR;
    if (fwl_posix_write_atomic(p->dir, key, data, len, 0600) != 0) {
        plog(p, FWL_LOG_ERROR, "%s/%s: %s", p->dir, key, strerror(errno));
        return FWL_HAL_ERR;
    }
    return FWL_HAL_OK;
}

/* ---- clock, restart, logs ------------------------------------------------------------------- */

static uint64_t h_now(void *ctx) {
    time_t t = time(NULL);
    (void)ctx;
    return t > 0 ? (uint64_t)t : 0;
}

static uint64_t h_ticks_ms(void *ctx) {
    struct timespec ts;
    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void h_sleep_ms(void *ctx, uint32_t ms) {
    struct timespec ts;
    (void)ctx;
    ts.tv_sec = (time_t)(ms / 1000u);
    ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void h_restart(void *ctx) {
    fwl_posix *p = (fwl_posix *)ctx;
    plog(p, FWL_LOG_INFO, "restarting (re-exec)");
    fflush(stdout);
    fflush(stderr);
    close_writer(p);
    if (p->mosq != NULL) {
        mosquitto_loop_stop(p->mosq, true);
        mosquitto_destroy(p->mosq);
        p->mosq = NULL;
    }
    if (p->curl != NULL) { /* closes the cached connections: no descriptor outlives the exec */
        curl_easy_cleanup((CURL *)p->curl);
        p->curl = NULL;
    }
    execv("/proc/self/exe", p->opt.argv);
    plog(p, FWL_LOG_ERROR, "execv /proc/self/exe: %s", strerror(errno));
}

static void h_log(void *ctx, int level, const char *msg) { plog((fwl_posix *)ctx, level, "%s", msg); }

static void h_observe(void *ctx, const char *json, size_t len) {
    fwl_posix *p = (fwl_posix *)ctx;
    printf("%s %.*s\n", p->bundle->device_id, (int)len, json);
    fflush(stdout);
}

/* Fault injection for the boot-attempts test: FWLEDGER_C_CRASH_AT=self-check makes the process
 * die while a trial image is being checked, as a firmware that crashes before confirming. */
static int h_self_check(void *ctx, fwl_slot slot, char *msg, size_t cap) {
    fwl_posix *p = (fwl_posix *)ctx;
    const char *crash = getenv(CRASH_ENV);
    (void)slot;
    (void)msg;
    (void)cap;
    if (crash != NULL && strcmp(crash, "self-check") == 0 && p->trial) {
        plog(p, FWL_LOG_WARN, "simulated crash during the self-check");
        fflush(stdout);
        _exit(CRASH_EXIT_CODE);
    }
    return FWL_HAL_OK;
}

/* ---- MQTT (libmosquitto, its own network thread) -------------------------------------------- */

static void push_event(fwl_posix *p, fwl_mqtt_event_kind kind, const char *topic,
                       const void *payload, size_t len) {
    fwl_posix_event *e;
    pthread_mutex_lock(&p->lock);
    if (p->q_len == FWL_POSIX_QUEUE) { /* full: the oldest goes */
        p->q_head = (p->q_head + 1) % FWL_POSIX_QUEUE;
        p->q_len--;
    }
    e = &p->queue[(p->q_head + p->q_len) % FWL_POSIX_QUEUE];
    e->kind = kind;
    e->topic[0] = '\0';
    if (topic != NULL) fwl_strcpy(e->topic, sizeof e->topic, topic);
    e->truncated = len > sizeof e->payload;
    e->len = e->truncated ? sizeof e->payload : len;
    if (e->len > 0) memcpy(e->payload, payload, e->len);
    p->q_len++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static void on_connect(struct mosquitto *m, void *obj, int rc) {
    fwl_posix *p = (fwl_posix *)obj;
    (void)m;
    if (rc == 0) push_event(p, FWL_MQTT_CONNECTED, NULL, NULL, 0);
    else plog(p, FWL_LOG_WARN, "broker refused the connection: %s", mosquitto_connack_string(rc));
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc) {
    (void)m;
    (void)rc;
    push_event((fwl_posix *)obj, FWL_MQTT_DISCONNECTED, NULL, NULL, 0);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg) {
    (void)m;
    push_event((fwl_posix *)obj, FWL_MQTT_MESSAGE, msg->topic, msg->payload,
               msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0);
}

static void on_publish(struct mosquitto *m, void *obj, int mid) {
    fwl_posix *p = (fwl_posix *)obj;
    (void)m;
    (void)mid;
    pthread_mutex_lock(&p->lock);
    p->inflight--;
    pthread_mutex_unlock(&p->lock);
}

static int write_pem(fwl_posix *p, const char *name, const char *pem) {
    char dir[FWL_POSIX_PATH];
    if (path_of(p, "tls", dir, sizeof dir) != 0) return -1;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return -1;
    return fwl_posix_write_atomic(dir, name, pem, strlen(pem), 0600);
}

static int h_mqtt_connect(void *ctx, const fwl_mqtt_config *cfg) {
    fwl_posix *p = (fwl_posix *)ctx;
    char host[256], ca[FWL_POSIX_PATH], cert[FWL_POSIX_PATH], key[FWL_POSIX_PATH];
    uint16_t port;
    bool tls = strncmp(cfg->url, "mqtts://", 8) == 0;
    int rc;

    if (fwl_url_host_port(cfg->url, host, sizeof host, &port, tls ? 8883 : 1883) != 0) {
        plog(p, FWL_LOG_ERROR, "cannot parse the broker address %s", cfg->url);
        return FWL_HAL_ERR;
    }
    if (!tls && !(strncmp(cfg->url, "mqtt://", 7) == 0 && fwl_url_is_loopback(cfg->url))) {
        plog(p, FWL_LOG_ERROR, "%s: plain mqtt:// is only allowed on loopback", cfg->url);
        return FWL_HAL_ERR;
    }
    p->mosq = mosquitto_new(cfg->client_id, true, p);
    if (p->mosq == NULL) return FWL_HAL_ERR;
    mosquitto_int_option(p->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_connect_callback_set(p->mosq, on_connect);
    mosquitto_disconnect_callback_set(p->mosq, on_disconnect);
    mosquitto_message_callback_set(p->mosq, on_message);
    mosquitto_publish_callback_set(p->mosq, on_publish);
    mosquitto_reconnect_delay_set(p->mosq, 1, 30, true);
    if (tls) {
        if (write_pem(p, "ca.pem", cfg->ca_pem) != 0 || write_pem(p, "cert.pem", cfg->cert_pem) != 0 ||
            write_pem(p, "key.pem", cfg->key_pem) != 0 || path_of(p, "tls/ca.pem", ca, sizeof ca) ||
            path_of(p, "tls/cert.pem", cert, sizeof cert) || path_of(p, "tls/key.pem", key, sizeof key)) {
            plog(p, FWL_LOG_ERROR, "cannot write the TLS files: %s", strerror(errno));
            goto fail;
        }
        /* Only the gateway CA is trusted (no system store); the broker's name is checked. */
        rc = mosquitto_tls_set(p->mosq, ca, NULL, cert, key, NULL);
        if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_opts_set(p->mosq, 1, NULL, NULL); /* library default: TLS >= 1.2 */
        if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_insecure_set(p->mosq, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            plog(p, FWL_LOG_ERROR, "TLS setup: %s", mosquitto_strerror(rc));
            goto fail;
        }
    }
    pthread_mutex_lock(&p->lock);
    p->q_head = p->q_len = 0;
    p->inflight = 0;
    pthread_mutex_unlock(&p->lock);
    rc = mosquitto_connect_async(p->mosq, host, port, cfg->keepalive_s);
    if (rc != MOSQ_ERR_SUCCESS) {
        plog(p, FWL_LOG_WARN, "connect to %s:%u: %s", host, (unsigned)port,
             rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        goto fail;
    }
    rc = mosquitto_loop_start(p->mosq);
    if (rc != MOSQ_ERR_SUCCESS) goto fail;
    return FWL_HAL_OK;
fail:
    mosquitto_destroy(p->mosq);
    p->mosq = NULL;
    return FWL_HAL_ERR;
}

static void h_mqtt_disconnect(void *ctx) {
    fwl_posix *p = (fwl_posix *)ctx;
    int i;
    if (p->mosq == NULL) return;
    for (i = 0; i < 100; i++) { /* QoS 1 publishes in flight: up to 2 s */
        int inflight;
        pthread_mutex_lock(&p->lock);
        inflight = p->inflight;
        pthread_mutex_unlock(&p->lock);
        if (inflight <= 0) break;
        h_sleep_ms(ctx, 20);
    }
    mosquitto_disconnect(p->mosq);
    mosquitto_loop_stop(p->mosq, false);
    mosquitto_destroy(p->mosq);
    p->mosq = NULL;
}

static int h_mqtt_subscribe(void *ctx, const char *topic, int qos) {
    fwl_posix *p = (fwl_posix *)ctx;
    if (p->mosq == NULL) return FWL_HAL_ERR;
    return mosquitto_subscribe(p->mosq, NULL, topic, qos) == MOSQ_ERR_SUCCESS ? FWL_HAL_OK
                                                                              : FWL_HAL_ERR;
}

static int h_mqtt_publish(void *ctx, const char *topic, const void *data, size_t len, int qos,
                          bool retain) {
    fwl_posix *p = (fwl_posix *)ctx;
    int rc;
    if (p->mosq == NULL || len > 0x7FFFFFFF) return FWL_HAL_ERR;
    pthread_mutex_lock(&p->lock);
    if (qos > 0) p->inflight++;
    pthread_mutex_unlock(&p->lock);
    rc = mosquitto_publish(p->mosq, NULL, topic, (int)len, data, qos, retain);
    if (rc != MOSQ_ERR_SUCCESS) {
        pthread_mutex_lock(&p->lock);
        if (qos > 0) p->inflight--;
        pthread_mutex_unlock(&p->lock);
        return FWL_HAL_ERR;
    }
    return FWL_HAL_OK;
}

static int h_mqtt_poll(void *ctx, uint32_t timeout_ms, fwl_mqtt_event *ev, uint8_t *buf,
                       size_t cap) {
    fwl_posix *p = (fwl_posix *)ctx;
    struct timespec until;
    fwl_posix_event *e;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(timeout_ms / 1000u);
    until.tv_nsec += (long)(timeout_ms % 1000u) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    while (p->q_len == 0) {
        if (pthread_cond_timedwait(&p->cond, &p->lock, &until) == ETIMEDOUT) {
            pthread_mutex_unlock(&p->lock);
            return FWL_HAL_ERR_TIMEOUT;
        }
    }
    e = &p->queue[p->q_head];
    ev->kind = e->kind;
    fwl_strcpy(ev->topic, sizeof ev->topic, e->topic);
    ev->len = e->len < cap ? e->len : cap;
    ev->truncated = e->truncated || e->len > cap;
    if (ev->len > 0) memcpy(buf, e->payload, ev->len);
    p->q_head = (p->q_head + 1) % FWL_POSIX_QUEUE;
    p->q_len--;
    pthread_mutex_unlock(&p->lock);
    return FWL_HAL_OK;
}

/* ---- HTTPS (libcurl) ------------------------------------------------------------------------ */

typedef struct http_call {
    fwl_posix *p;
    CURL *curl;
    const fwl_http_sink *sink;
    int64_t range_start;
    int64_t content_length;
    bool head_done;
    bool aborted;
    bool stalled;
    uint32_t stall_ms;
    curl_off_t last_bytes;
    uint64_t last_ms;
} http_call;

static uint64_t h_ticks_ms(void *ctx);

/* No new byte for stall_ms: abort as a stall (curl's low-speed check averages over 5 s). */
static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    http_call *c = (http_call *)user;
    uint64_t now = h_ticks_ms(NULL);
    (void)dltotal;
    (void)ultotal;
    (void)ulnow;
    if (dlnow > c->last_bytes || c->last_ms == 0) {
        c->last_bytes = dlnow;
        c->last_ms = now;
        return 0;
    }
    if (now - c->last_ms >= c->stall_ms) {
        c->stalled = true;
        return 1;
    }
    return 0;
}

static int64_t parse_i64(const char *s, const char *end) {
    int64_t v = 0;
    bool any = false;
    while (s < end && *s == ' ') s++;
    while (s < end && *s >= '0' && *s <= '9') {
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*s - '0');
        s++;
        any = true;
    }
    return any ? v : -1;
}

static size_t on_header(char *line, size_t size, size_t n, void *user) {
    http_call *c = (http_call *)user;
    size_t len = size * n;
    const char *end = line + len;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response (after a 1xx) */
        c->range_start = -1;
        c->content_length = -1;
    } else if (len > 14 && strncasecmp(line, "Content-Range:", 14) == 0) {
        const char *v = line + 14;
        while (v < end && *v == ' ') v++;
        if (end - v > 6 && strncmp(v, "bytes ", 6) == 0) c->range_start = parse_i64(v + 6, end);
    } else if (len > 15 && strncasecmp(line, "Content-Length:", 15) == 0) {
        c->content_length = parse_i64(line + 15, end);
    }
    return len;
}

static int call_head(http_call *c) {
    long code = 0;
    c->head_done = true;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
    if (c->sink->on_head(c->sink->user, (int)code, c->range_start, c->content_length) != 0) {
        c->aborted = true;
        return -1;
    }
    return 0;
}

static size_t on_write(char *data, size_t size, size_t n, void *user) {
    http_call *c = (http_call *)user;
    size_t len = size * n;
    if (!c->head_done && call_head(c) != 0) return 0;
    if (c->sink->on_body(c->sink->user, (const uint8_t *)data, len) != 0) {
        c->aborted = true;
        return 0;
    }
    return len;
}

static int h_http_get(void *ctx, const fwl_http_request *req, const fwl_http_sink *sink) {
    fwl_posix *p = (fwl_posix *)ctx;
    CURL *curl = (CURL *)p->curl;
    struct curl_slist *headers = NULL;
    struct curl_blob ca, cert, key;
    http_call c;
    char range[32];
    CURLcode rc;
    bool https = strncmp(req->url, "https://", 8) == 0;

    if (curl == NULL) return FWL_HAL_ERR;
    if (!https && !(strncmp(req->url, "http://", 7) == 0 && fwl_url_is_loopback(req->url))) {
        plog(p, FWL_LOG_ERROR, "refusing %s: plain http:// is only allowed on loopback", req->url);
        return FWL_HAL_ERR;
    }
    memset(&c, 0, sizeof c);
    c.p = p;
    c.curl = curl;
    c.sink = sink;
    c.range_start = -1;
    c.content_length = -1;
    c.stall_ms = req->stall_timeout_ms > 0 ? req->stall_timeout_ms : 15000;
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, https ? "https" : "http");
#else
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS, https ? CURLPROTO_HTTPS : CURLPROTO_HTTP);
#endif
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    headers = curl_slist_append(headers, "Accept-Encoding: identity");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (req->offset > 0) {
        snprintf(range, sizeof range, "%llu-", (unsigned long long)req->offset);
        curl_easy_setopt(curl, CURLOPT_RANGE, range);
    }
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)p->opt.connect_timeout_s * 1000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)req->total_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                     (long)(req->stall_timeout_ms >= 1000 ? req->stall_timeout_ms / 1000 : 1));
    if (https) {
        /* Trust only the gateway CA from the bundle, and show the device certificate. */
        ca.data = (void *)p->bundle->ca_cert_pem;
        ca.len = strlen(p->bundle->ca_cert_pem);
        ca.flags = CURL_BLOB_COPY;
        cert.data = (void *)p->bundle->device_cert_pem;
        cert.len = strlen(p->bundle->device_cert_pem);
        cert.flags = CURL_BLOB_COPY;
        key.data = (void *)p->bundle->device_key_pem;
        key.len = strlen(p->bundle->device_key_pem);
        key.flags = CURL_BLOB_COPY;
        curl_easy_setopt(curl, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &ca);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(curl, CURLOPT_SSLCERT_BLOB, &cert);
        curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
        curl_easy_setopt(curl, CURLOPT_SSLKEY_BLOB, &key);
    }
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &c);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &c);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    rc = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    if (rc == CURLE_OK && !c.head_done && call_head(&c) != 0) return FWL_HAL_ERR_ABORTED;
    if (c.aborted) return FWL_HAL_ERR_ABORTED;
    if (rc == CURLE_OK) return FWL_HAL_OK;
    if (c.stalled) {
        plog(p, FWL_LOG_WARN, "GET %s: no data for %u ms", req->url, (unsigned)c.stall_ms);
        return FWL_HAL_ERR_TIMEOUT;
    }
    plog(p, FWL_LOG_WARN, "GET %s: %s", req->url, curl_easy_strerror(rc));
    if (rc == CURLE_OPERATION_TIMEDOUT) return FWL_HAL_ERR_TIMEOUT;
    return FWL_HAL_ERR;
}

/* ---- the table ------------------------------------------------------------------------------ */

const fwl_hal fwl_posix_hal = {
    h_mqtt_connect, h_mqtt_disconnect, h_mqtt_subscribe, h_mqtt_publish, h_mqtt_poll,
    h_http_get,
    h_boot_info, h_factory_image, h_slot_held, h_slot_begin, h_slot_write, h_slot_read,
    h_slot_finalize, h_set_pending, h_mark_valid, h_rollback,
    h_state_load, h_state_store, NULL /* security_floor: no hardware counter */,
    h_now, h_ticks_ms, h_sleep_ms, h_restart, h_log, h_observe, h_self_check,
};

int fwl_posix_open(fwl_posix *p, const fwl_posix_options *opt, const fwl_bundle *bundle) {
    pthread_condattr_t ca;
    memset(p, 0, sizeof *p);
    p->opt = *opt;
    if (p->opt.connect_timeout_s == 0) p->opt.connect_timeout_s = 10;
    p->bundle = bundle;
    p->writer_fd = -1;
    p->pending = -1;
    if (fwl_strcpy(p->dir, sizeof p->dir, opt->state_dir) != 0) {
        fprintf(stderr, "error: state directory path too long\n");
        return -1;
    }
    if (mkdir(p->dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "error: %s: %s\n", p->dir, strerror(errno));
        return -1;
    }
    if (boot_loader(p) != 0) return -1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    mosquitto_lib_init();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return -1;
    p->curl = curl_easy_init();
    if (p->curl == NULL) return -1;
    return 0;
}

void fwl_posix_close(fwl_posix *p) {
    h_mqtt_disconnect(p);
    close_writer(p);
    if (p->curl != NULL) curl_easy_cleanup((CURL *)p->curl);
    p->curl = NULL;
    curl_global_cleanup();
    mosquitto_lib_cleanup();
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
}
