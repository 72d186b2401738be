/*
 * The POSIX (Linux) port of fwl_hal: libmosquitto for MQTT over TLS (client certificate from the
 * bundle, only the bundle's CA trusted), libcurl for HTTPS downloads (same trust, Range resume),
 * file-backed A/B slots and state in one directory, and an emulation of the ESP-IDF boot loader's
 * app rollback. "Restart" re-executes the program (execv of /proc/self/exe, same arguments).
 *
 * State directory:
 *   slot_a.bin, slot_b.bin   the firmware slots (slot A gets a factory image on first boot)
 *   bootloader               the boot loader's state: active slot, trial flag, attempts, pending
 *   record, notice           the agent's persistent values (fwl_hal.state_store keys)
 *   tls/                     the bundle's PEMs as files for libmosquitto (mode 0600)
 * Every file is replaced atomically (temp file + fsync + rename + fsync of the directory).
 */
#ifndef FWL_HAL_POSIX_H
#define FWL_HAL_POSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fwl_agent.h"
#include "fwl_bundle.h"
#include "fwl_hal.h"

#define FWL_POSIX_QUEUE 8
#define FWL_POSIX_PATH 1024

typedef struct fwl_posix_options {
    const char *state_dir;
    const char *factory_version; /**< semantic version of the factory image ("1.0.0") */
    char *const *argv;           /**< for the re-exec */
    uint32_t connect_timeout_s;  /**< TCP/TLS connect timeout of downloads (10) */
    bool quiet;                  /**< only warnings and errors on stderr */
} fwl_posix_options;

typedef struct fwl_posix_event {
    fwl_mqtt_event_kind kind;
    char topic[FWL_MQTT_TOPIC_MAX];
    size_t len;
    bool truncated;
    uint8_t payload[FWL_NOTICE_MAX];
} fwl_posix_event;

/** The port's context (the `ctx` of every HAL call). Large (~70 KiB): make it static. */
typedef struct fwl_posix {
    fwl_posix_options opt;
    const fwl_bundle *bundle;
    char dir[FWL_POSIX_PATH];
    /* boot loader emulation */
    fwl_slot active;
    bool trial;
    uint32_t attempts;
    int pending;
    /* slot being written */
    int writer_fd;
    fwl_slot writer_slot;
    /* MQTT */
    struct mosquitto *mosq;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    fwl_posix_event queue[FWL_POSIX_QUEUE];
    size_t q_head, q_len;
    int inflight;
    /* HTTP */
    void *curl;
} fwl_posix;

/** The HAL table of this port. */
extern const fwl_hal fwl_posix_hal;

/** Opens the state directory (creating it), runs the boot loader emulation (a pending slot
 *  becomes a trial; a trial counts one more boot), and sets up libmosquitto and libcurl.
 *  0, or -1 with a message on stderr. */
int fwl_posix_open(fwl_posix *p, const fwl_posix_options *opt, const fwl_bundle *bundle);

/** Releases what fwl_posix_open set up (not needed before a re-exec). */
void fwl_posix_close(fwl_posix *p);

/** Writes `len` bytes to DIR/NAME atomically (temp + fsync + rename + fsync of DIR) with
 *  `mode`. 0 or -1 (errno set). */
int fwl_posix_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                           unsigned mode);

/** The factory image bytes of a host device (the Rust host agent makes the same):
 *  "fwledger factory image: model M, version V\n" 64 times. Returns the length written into
 *  `out` (at most `cap`), or -1 when it does not fit. */
long fwl_posix_factory_bytes(const char *model, const char *version, uint8_t *out, size_t cap);

#endif
