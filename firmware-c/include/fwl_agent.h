/*
 * fwl_agent.h — the fwledger C device agent (the same contract as the Rust agent in core/device,
 * docs/PROTOCOL.md §12).
 *
 *   boot:   load the record → reconcile with what the boot loader did → self-check a trial image
 *           and confirm it (raising the security-version floor) or roll back → check that the
 *           running image is the one that was verified;
 *   serve:  MQTT session → on every CONNACK subscribe to fwledger/v1/dev/{id}/notice, publish the
 *           status and a `check` request (self validation; again every check interval) → for
 *           each notice: verify the manifest with the bundle's vendor keys (fwl_notice_verify)
 *           → update policy (fwl_policy_decide) → download into the inactive slot through the
 *           streaming verifier, resuming with Range → pending → restart.
 *
 * Failures are reported as `failed` / `rolled_back` with `reason` = "<check>: <message>", the
 * check names of docs/PROTOCOL.md §13 plus the device's own (notice-format, notice-url,
 * download, download-stalled, slot-storage, self-check, boot-attempts).
 *
 * Memory: `fwl_agent` is caller-allocated (~30 KiB; make it static on a microcontroller) and
 * holds every buffer the agent uses; the agent never calls malloc. The fwledger library
 * allocates a few hundred bytes per verified manifest and nothing per downloaded chunk.
 * Threads: one thread drives an agent; the HAL may use threads inside.
 */
#ifndef FWL_AGENT_H
#define FWL_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwl_bundle.h"
#include "fwl_hal.h"
#include "fwl_json.h"
#include "fwledger.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest notice accepted (CBOR). Larger ones are refused as `notice-format`. */
#define FWL_NOTICE_MAX 8192
/** Largest persisted record (JSON). */
#define FWL_RECORD_MAX 8192
/** Release ids remembered as processed (the oldest is forgotten first). */
#define FWL_MAX_PROCESSED 32
/** Download chunk / read-back buffer. */
#define FWL_CHUNK 4096
/** Longest download URL (docs/PROTOCOL.md §12). */
#define FWL_URL_MAX 2048
/** Bytes that make the self-check of an image fail, when `self_check_marker` is on (tests). */
#define FWL_SELF_CHECK_FAIL_MARKER "FWLEDGER-SELFCHECK-FAIL"
/** Persistence keys (fwl_hal.state_load / state_store). */
#define FWL_KEY_RECORD "record"
#define FWL_KEY_NOTICE "notice"

/** Return codes of the agent API. */
enum {
    FWL_AGENT_OK = 0,
    /** Restart the device now (hal->restart): an image is pending, or a rollback happened. */
    FWL_AGENT_RESTART = 1,
    /** `*stop` became non-zero. */
    FWL_AGENT_STOPPED = 2,
    /** The record cannot be read or written. */
    FWL_AGENT_ERR_STORAGE = -1,
    /** Neither slot holds an image that matches its record. */
    FWL_AGENT_ERR_NO_BOOTABLE = -2,
    /** Bad configuration (bundle, settings). */
    FWL_AGENT_ERR_CONFIG = -3
};

/** Update states of the status report. */
typedef enum fwl_update_state {
    FWL_STATE_IDLE = 0,
    FWL_STATE_DOWNLOADING,
    FWL_STATE_INSTALLING,
    FWL_STATE_REBOOTING,
    FWL_STATE_CONFIRMED,
    FWL_STATE_FAILED,
    FWL_STATE_ROLLED_BACK
} fwl_update_state;

/** The JSON name of a state ("idle", "rolled_back", …). */
const char *fwl_update_state_name(fwl_update_state s);

/** Tunables (defaults from fwl_agent_settings_default; the ESP-IDF port takes them from
 *  Kconfig). */
typedef struct fwl_agent_settings {
    uint32_t check_interval_s;   /**< self validation: ask on `check` this often (60) */
    uint32_t max_boot_attempts;  /**< boots an unconfirmed image gets (3) */
    uint32_t min_download_rate;  /**< bytes/s a download must average beyond the grace (1024) */
    uint32_t download_grace_s;   /**< time every download gets regardless of size (60) */
    uint32_t stall_timeout_s;    /**< no byte for this long = download-stalled (15) */
    uint32_t download_requests;  /**< requests without progress before giving up (4) */
    uint32_t retry_after_s;      /**< a network failure is retried after this (30) */
    uint16_t keepalive_s;        /**< MQTT keep-alive (30) */
    bool allow_plain_http;       /**< accept http:// download URLs (loopback demos only) */
    bool self_check_marker;      /**< fail the self-check of images holding the marker */
} fwl_agent_settings;

void fwl_agent_settings_default(fwl_agent_settings *s);

/** What a slot holds, as the manifest it was verified against states. */
typedef struct fwl_slot_record {
    bool present;
    fwl_image_info image;
    bool has_release;
    uint8_t release[32]; /**< release id: SHA-256 of the signed manifest */
    bool has_signer;
    uint8_t vendor_key[32];
    uint64_t key_generation;
} fwl_slot_record;

/** The persistent state of the agent (stored as JSON under FWL_KEY_RECORD, one atomic write
 *  per transition). */
typedef struct fwl_record {
    fwl_slot active;     /**< the slot the agent last ran from */
    bool confirmed;      /**< the active image passed its self-check */
    int pending;         /**< slot waiting for the next boot, or -1 */
    fwl_slot_record slots[2];
    uint64_t highest_security_version;
    struct {
        uint8_t key[32];
        uint64_t generation;
    } keygens[FWL_MAX_VENDORS];
    size_t keygen_count;
    bool download;             /**< a download is in progress (its notice is under "notice") */
    uint8_t download_release[32];
    fwl_slot download_slot;
    uint8_t processed[FWL_MAX_PROCESSED][32];
    size_t processed_count;
    fwl_update_state report_state;
    char report_release[129];  /**< "" = none */
    char report_reason[320];   /**< "" = none */
} fwl_record;

/** Serializes a record as JSON; returns the length or -1 when it does not fit. */
long fwl_record_write(const fwl_record *r, char *out, size_t cap);
/** Parses a record; 0 or -1. `toks` is scratch space. */
int fwl_record_parse(fwl_record *r, const char *json, size_t len, fwl_json_tok *toks,
                     size_t tok_cap);

/** Why an update did not install. */
typedef enum fwl_failure_kind {
    FWL_FAIL_REFUSED = 1, /**< bad or not for this device: never tried again */
    FWL_FAIL_NETWORK,     /**< retried (resuming) after retry_after_s */
    FWL_FAIL_STORAGE      /**< the device's own storage failed */
} fwl_failure_kind;

typedef struct fwl_failure {
    fwl_failure_kind kind;
    const char *check; /**< static check name */
    char message[240];
} fwl_failure;

#define FWL_AGENT_TOKENS 160

/** The agent. Caller-allocated; every member is private. */
typedef struct fwl_agent {
    const fwl_hal *hal;
    void *ctx;
    const fwl_bundle *bundle;
    fwl_agent_settings settings;
    volatile const int *stop;
    fwl_mqtt_config mqtt;
    fwl_record rec;
    fwl_boot_info boot;
    char topic_notice[FWL_MQTT_TOPIC_MAX];
    char topic_status[FWL_MQTT_TOPIC_MAX];
    char topic_check[FWL_MQTT_TOPIC_MAX];
    bool session;
    bool connected;
    uint64_t last_check_ms;
    bool retry_set;
    uint8_t retry_release[32];
    uint64_t retry_at_ms;
    bool resume_due;
    uint64_t resume_at_ms;
    /* buffers */
    uint8_t msg[FWL_NOTICE_MAX];
    size_t msg_len;
    uint8_t chunk[FWL_CHUNK];
    char url[FWL_URL_MAX + 1];
    char text[FWL_RECORD_MAX];
    char status[1536];
    fwl_json_tok toks[FWL_AGENT_TOKENS];
    fwl_image_verifier verifier;
    /* the download in progress (HTTP sink state) */
    struct {
        fwl_slot slot;
        uint64_t size;
        uint64_t start;
        uint64_t skip;
        uint64_t deadline_ms;
        fwl_failure failure;
        bool failed;
        int status;
    } dl;
} fwl_agent;

/** Prepares an agent. `bundle` must stay valid and unchanged while the agent lives. Does no IO.
 *  FWL_AGENT_OK or FWL_AGENT_ERR_CONFIG. */
int fwl_agent_init(fwl_agent *a, const fwl_hal *hal, void *ctx, const fwl_bundle *bundle,
                   const fwl_agent_settings *settings);

/** The boot sequence. FWL_AGENT_OK (serve next), FWL_AGENT_RESTART (restart now: a rollback
 *  or a switch to the other slot), or an error. */
int fwl_agent_boot(fwl_agent *a);

/** Serves until an update is pending (FWL_AGENT_RESTART, after the MQTT session was closed) or
 *  `*stop` becomes non-zero (FWL_AGENT_STOPPED; `stop` may be NULL). */
int fwl_agent_serve(fwl_agent *a, volatile const int *stop);

/** boot + serve + hal->restart, for a firmware main task. Returns only on error or stop. */
int fwl_agent_run(fwl_agent *a, volatile const int *stop);

/** Handles one notice payload (as received on the notice topic). FWL_AGENT_RESTART when an
 *  image is pending, FWL_AGENT_OK otherwise (a refusal is reported, not returned), or
 *  FWL_AGENT_ERR_STORAGE. Exposed for tests; fwl_agent_serve calls it. */
int fwl_agent_handle_notice(fwl_agent *a, const uint8_t *payload, size_t len, bool truncated);

/** The status report for the current state as JSON into `out`; `progress` < 0 = none.
 *  Returns the length or -1. */
long fwl_agent_status_json(const fwl_agent *a, char *out, size_t cap, int64_t progress);

/** The record as it stands. */
const fwl_record *fwl_agent_record(const fwl_agent *a);

#ifdef __cplusplus
}
#endif

#endif /* FWL_AGENT_H */
