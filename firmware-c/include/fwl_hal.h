/*
 * fwl_hal.h — the hardware abstraction seam of the fwledger C device agent.
 *
 * The agent core (src/agent.c) does no IO of its own: it talks to the device only through one
 * `fwl_hal` table of function pointers plus the `void *ctx` handed to every call. Two ports
 * implement it: port/esp-idf (esp-mqtt, esp_http_client, esp_ota_ops, NVS, eFuse, SNTP) and
 * port/posix (libmosquitto, libcurl, file-backed A/B slots); the unit tests use an in-memory one.
 *
 * Conventions, for every function below:
 *   - Return values: functions returning `int` return FWL_HAL_OK (0) on success or one of the
 *     negative FWL_HAL_ERR_* codes. They never return other values.
 *   - Threads: the core calls the HAL from one thread (its own task on ESP-IDF). A port may use
 *     threads inside (esp-mqtt's task, libmosquitto's loop thread) but must hand events to the
 *     core only through mqtt_poll.
 *   - Memory: the core owns every buffer it passes and bounds every length. No function may keep
 *     a pointer it was given beyond the call, unless documented (fwl_mqtt_config).
 *   - Optional entries may be NULL; all others are required.
 *
 * Slots: a device has two firmware slots, FWL_SLOT_A and FWL_SLOT_B (ESP32: the `ota_0` and
 * `ota_1` app partitions). One runs; updates are written to the other. The boot loader (ESP-IDF's
 * second-stage boot loader with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE; on POSIX an emulation in
 * the port) starts a slot marked pending as a *trial*: the agent self-checks it, then marks it
 * valid or rolls back.
 */
#ifndef FWL_HAL_H
#define FWL_HAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Status codes of HAL functions. */
enum {
    FWL_HAL_OK = 0,
    /** A generic failure: IO, flash, TLS, a refused connection. */
    FWL_HAL_ERR = -1,
    /** Nothing is stored under that key (state_load). */
    FWL_HAL_ERR_NOT_FOUND = -2,
    /** No data arrived within the stall timeout (http_get); nothing happened (mqtt_poll). */
    FWL_HAL_ERR_TIMEOUT = -3,
    /** A callback of the core asked to stop (http_get). */
    FWL_HAL_ERR_ABORTED = -4,
    /** The data does not fit the caller's buffer (state_load). */
    FWL_HAL_ERR_TOO_BIG = -5,
    /** The port cannot do this (e.g. resume a slot write across a reset). */
    FWL_HAL_ERR_UNSUPPORTED = -6,
    /** The image in a slot is not a valid image for this device (slot_finalize). */
    FWL_HAL_ERR_INVALID_IMAGE = -7
};

/** One of the two firmware slots. */
typedef enum fwl_slot { FWL_SLOT_A = 0, FWL_SLOT_B = 1 } fwl_slot;

/** The other slot. */
#define FWL_SLOT_OTHER(s) ((s) == FWL_SLOT_A ? FWL_SLOT_B : FWL_SLOT_A)

/** What the boot loader did at this boot (boot_info). */
typedef struct fwl_boot_info {
    /** The slot that is running. */
    fwl_slot running;
    /** The running image was booted from a pending slot and is not confirmed yet
     *  (ESP-IDF: esp_ota_get_state_partition() == ESP_OTA_IMG_PENDING_VERIFY). */
    bool trial;
    /** Boots of this unconfirmed image so far, this one included (1 on ESP-IDF, whose boot
     *  loader rolls back by itself when a trial image resets without confirming). */
    uint32_t boot_attempts;
} fwl_boot_info;

/** What the agent knows about an image: from its verified manifest, or the factory image. */
typedef struct fwl_image_info {
    /** Semantic version (NUL-terminated). */
    char version[129];
    /** The manifest's security_version (factory: the app's own). */
    uint64_t security_version;
    /** Exact size in bytes; 0 = unknown (an ESP32 factory image: the boot loader checks it). */
    uint64_t size;
    /** SHA-256 of the image (all zero when size is 0). */
    uint8_t sha256[32];
} fwl_image_info;

/* ------------------------------------------------------------------------------------------ */
/* MQTT                                                                                        */

/** What a session connects with. Strings are NUL-terminated and stay valid (they live in the
 *  agent) from mqtt_connect until mqtt_disconnect returns: a port may keep these pointers. */
typedef struct fwl_mqtt_config {
    /** `mqtts://HOST:PORT` (or `mqtt://HOST:PORT`, which a port accepts only on loopback). */
    const char *url;
    /** Client id = the device id = the CN of the device certificate. */
    const char *client_id;
    /** The gateway CA (PEM): the only trust anchor for the broker's certificate. */
    const char *ca_pem;
    /** The device certificate and its PKCS#8 private key (PEM). */
    const char *cert_pem;
    const char *key_pem;
    /** Keep-alive interval in seconds. */
    uint16_t keepalive_s;
} fwl_mqtt_config;

/** Kinds of MQTT events (mqtt_poll). */
typedef enum fwl_mqtt_event_kind {
    FWL_MQTT_CONNECTED = 1,    /**< CONNACK received: (re)subscribe now, sessions are clean */
    FWL_MQTT_DISCONNECTED = 2, /**< the connection dropped; the port reconnects by itself */
    FWL_MQTT_MESSAGE = 3       /**< a PUBLISH on a subscribed topic */
} fwl_mqtt_event_kind;

/** Longest topic the agent uses (`fwledger/v1/dev/{64 chars}/notice`) plus room. */
#define FWL_MQTT_TOPIC_MAX 128

/** One MQTT event, filled by mqtt_poll. */
typedef struct fwl_mqtt_event {
    fwl_mqtt_event_kind kind;
    /** MESSAGE: the topic (NUL-terminated; cut to fit). */
    char topic[FWL_MQTT_TOPIC_MAX];
    /** MESSAGE: the payload length (bytes copied into the caller's buffer). */
    size_t len;
    /** MESSAGE: the payload was longer than the buffer; `len` bytes of it were copied. */
    bool truncated;
} fwl_mqtt_event;

/* ------------------------------------------------------------------------------------------ */
/* HTTP(S) download                                                                            */

/** One GET request. */
typedef struct fwl_http_request {
    /** `https://…` (NUL-terminated, at most 2048 bytes). */
    const char *url;
    /** When non-zero, send `Range: bytes=<offset>-` (resume). */
    uint64_t offset;
    /** Fail with FWL_HAL_ERR_TIMEOUT when no byte arrives for this long (slow retrieval). */
    uint32_t stall_timeout_ms;
    /** Fail with FWL_HAL_ERR_TIMEOUT when the whole request takes longer than this. */
    uint32_t total_timeout_ms;
    /** A buffer of the core that a port may read the body into (no allocation per chunk);
     *  a port whose client owns its own fixed buffer (libcurl) may ignore it. */
    uint8_t *buf;
    size_t buf_len;
} fwl_http_request;

/** Where the response goes. Both callbacks return 0 to go on, anything else to abort (then
 *  http_get returns FWL_HAL_ERR_ABORTED). */
typedef struct fwl_http_sink {
    /** Called once, before any body byte: the HTTP status, the first byte of `Content-Range`
     *  (-1 when absent or unparsable) and `Content-Length` (-1 when unknown). */
    int (*on_head)(void *user, int status, int64_t range_start, int64_t content_length);
    /** Called for each piece of the body, in order. */
    int (*on_body)(void *user, const uint8_t *data, size_t len);
    void *user;
} fwl_http_sink;

/* ------------------------------------------------------------------------------------------ */
/* The table                                                                                   */

/** Log levels (log). */
enum { FWL_LOG_ERROR = 1, FWL_LOG_WARN = 2, FWL_LOG_INFO = 3, FWL_LOG_DEBUG = 4 };

typedef struct fwl_hal {
    /* ---- MQTT ---------------------------------------------------------------------------- */

    /** Starts an MQTT session with TLS client authentication, trusting only cfg->ca_pem. Does
     *  not wait for the connection: FWL_MQTT_CONNECTED comes through mqtt_poll. The session
     *  reconnects by itself after a drop until mqtt_disconnect. FWL_HAL_ERR if it cannot even
     *  start (bad URL or PEM): the core backs off and tries again. */
    int (*mqtt_connect)(void *ctx, const fwl_mqtt_config *cfg);
    /** Ends the session: waits (bounded, ~2 s) for QoS 1 publishes in flight, then closes.
     *  Safe to call when not connected. */
    void (*mqtt_disconnect)(void *ctx);
    /** Subscribes (QoS 0 or 1). */
    int (*mqtt_subscribe)(void *ctx, const char *topic, int qos);
    /** Publishes `len` bytes (may be 0) with QoS 0 or 1; `retain` as given. The data is copied
     *  before the call returns. */
    int (*mqtt_publish)(void *ctx, const char *topic, const void *data, size_t len, int qos,
                        bool retain);
    /** Waits up to `timeout_ms` for the next event. On FWL_HAL_OK fills `*ev`; for a message,
     *  copies at most `cap` payload bytes into `buf` (setting ev->truncated when more arrived).
     *  FWL_HAL_ERR_TIMEOUT when nothing happened. */
    int (*mqtt_poll)(void *ctx, uint32_t timeout_ms, fwl_mqtt_event *ev, uint8_t *buf,
                     size_t cap);

    /* ---- HTTPS ----------------------------------------------------------------------------- */

    /** GET req->url, trusting only the gateway CA (and presenting the device certificate), no
     *  redirects, `Accept-Encoding: identity`. Calls sink->on_head once, then sink->on_body per
     *  chunk. FWL_HAL_OK when the body ended normally (whatever the status), FWL_HAL_ERR_TIMEOUT
     *  on a stall, FWL_HAL_ERR_ABORTED when a callback stopped it, FWL_HAL_ERR otherwise. */
    int (*http_get)(void *ctx, const fwl_http_request *req, const fwl_http_sink *sink);

    /* ---- Slots ----------------------------------------------------------------------------- */

    /** What the boot loader did at this boot. */
    int (*boot_info)(void *ctx, fwl_boot_info *out);
    /** The image the device shipped with, in slot A, for a device without a record. A port
     *  that makes it (POSIX) writes it here; ESP-IDF describes the running app (size 0). */
    int (*factory_image)(void *ctx, fwl_image_info *out);
    /** Bytes of `slot` written by slot_write and still held (what a resumed download may
     *  keep); 0 when the port cannot say (ESP-IDF after a reset). Never more than was written. */
    int (*slot_held)(void *ctx, fwl_slot slot, uint64_t *len);
    /** Prepares `slot` (never the running one) for an image of `size` bytes, keeping its first
     *  `keep` bytes (a resumed download; `keep` <= slot_held) or erasing it (`keep` 0).
     *  FWL_HAL_ERR_UNSUPPORTED when `keep` cannot be kept: the core starts over with 0. */
    int (*slot_begin)(void *ctx, fwl_slot slot, uint64_t size, uint64_t keep);
    /** Appends `len` bytes to the slot being written. */
    int (*slot_write)(void *ctx, fwl_slot slot, const uint8_t *data, size_t len);
    /** Reads up to `len` bytes of `slot` at `offset` into `buf`; `*got` is how many (0 at the
     *  end). Works on the running slot too (self-check). */
    int (*slot_read)(void *ctx, fwl_slot slot, uint64_t offset, uint8_t *buf, size_t len,
                     size_t *got);
    /** Ends writing: makes the bytes durable (fsync / esp_ota_end) and checks what the port can
     *  check about the image (ESP-IDF: the app image format, and that its secure_version equals
     *  `image->security_version`) — FWL_HAL_ERR_INVALID_IMAGE if it is not bootable. */
    int (*slot_finalize)(void *ctx, fwl_slot slot, const fwl_image_info *image);
    /** Boots `slot` as a trial at the next restart (esp_ota_set_boot_partition). Durable. */
    int (*slot_set_pending)(void *ctx, fwl_slot slot);
    /** Confirms the running trial image (esp_ota_mark_app_valid_cancel_rollback, which on
     *  ESP-IDF with anti-rollback also burns the app's secure_version into eFuse). Durable. */
    int (*slot_mark_valid)(void *ctx);
    /** Gives up the running trial image: the other slot boots next. ESP-IDF restarts at once
     *  (esp_ota_mark_app_invalid_rollback_and_reboot); POSIX records it and returns, and the
     *  core then calls restart. */
    int (*slot_rollback)(void *ctx);

    /* ---- Persistence ----------------------------------------------------------------------- */

    /** Loads the value stored under `key` (at most 15 characters, [a-z_]) into `buf`.
     *  FWL_HAL_ERR_NOT_FOUND if none, FWL_HAL_ERR_TOO_BIG if it exceeds `cap`. */
    int (*state_load)(void *ctx, const char *key, uint8_t *buf, size_t cap, size_t *len);
    /** Replaces the value under `key` atomically and durably: after a power cut the key holds
     *  either the old or the new value (NVS blob + nvs_commit; temp file + fsync + rename). */
    int (*state_store)(void *ctx, const char *key, const uint8_t *data, size_t len);
    /** The hardware anti-rollback counter (ESP32: the eFuse secure_version), 0 without one.
     *  The agent never accepts a release below max(this, its stored counter). Optional. */
    int (*security_floor)(void *ctx, uint64_t *floor);

    /* ---- Clock, restart, logs -------------------------------------------------------------- */

    /** Unix time in seconds from a clock the device trusts (ESP-IDF: after an SNTP sync), or 0
     *  when it has none: the time checks that need a clock are then skipped. */
    uint64_t (*now)(void *ctx);
    /** A monotonic millisecond counter (timeouts). */
    uint64_t (*ticks_ms)(void *ctx);
    /** Sleeps. */
    void (*sleep_ms)(void *ctx, uint32_t ms);
    /** Restarts the device (esp_restart; POSIX: execv of /proc/self/exe with the same
     *  arguments). Does not return when it works. */
    void (*restart)(void *ctx);
    /** A log line (NUL-terminated, no newline). Optional. */
    void (*log)(void *ctx, int level, const char *msg);
    /** Every status report the agent publishes, also when offline (JSON). Optional. */
    void (*observe)(void *ctx, const char *json, size_t len);
    /** The application's own health check of a trial image, before it is confirmed (e.g. "the
     *  sensors answer"). FWL_HAL_OK to confirm; otherwise `msg` (NUL-terminated, cut to `cap`)
     *  says why and the image is rolled back. Optional: NULL = no extra check. */
    int (*self_check)(void *ctx, fwl_slot slot, char *msg, size_t cap);
} fwl_hal;

#ifdef __cplusplus
}
#endif

#endif /* FWL_HAL_H */
