/* An in-memory fwl_hal for the agent's unit tests: RAM slots, an emulated boot loader, a
 * key-value store with failure injection, a scripted HTTP server and MQTT session, a clock. */
#ifndef FWL_FAKE_HAL_H
#define FWL_FAKE_HAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwl_hal.h"

#define FAKE_SLOT_CAP (64 * 1024)
#define FAKE_KV 4
#define FAKE_KV_CAP 9000
#define FAKE_EVENTS 8
#define FAKE_PUBLISHES 32
#define FAKE_EFFECTS 64

typedef enum {
    FAKE_HTTP_NORMAL = 0,
    FAKE_HTTP_CUT_FIRST,   /* the first response ends after cut_at bytes */
    FAKE_HTTP_CUT_ALWAYS,  /* every response ends after cut_at bytes */
    FAKE_HTTP_IGNORE_RANGE,/* always 200 with the whole body */
    FAKE_HTTP_WRONG_RANGE, /* 206 with another Content-Range */
    FAKE_HTTP_STALL,       /* cut_at bytes, then a stall (FWL_HAL_ERR_TIMEOUT) */
    FAKE_HTTP_FAIL,        /* the connection fails */
    FAKE_HTTP_LIE_LENGTH,  /* Content-Length larger than the body */
    FAKE_HTTP_NO_LENGTH    /* no Content-Length */
} fake_http_mode;

typedef struct fake_publish {
    char topic[FWL_MQTT_TOPIC_MAX];
    char payload[2048];
    size_t len;
} fake_publish;

typedef struct fake {
    /* slots and boot loader */
    uint8_t slot[2][FAKE_SLOT_CAP];
    size_t slot_len[2];
    int writing;
    fwl_slot active;
    bool trial;
    uint32_t attempts;
    int pending;
    bool loader_ignores_pending;
    bool slot_write_fails;
    bool finalize_invalid;
    /* persistence */
    struct {
        char key[16];
        uint8_t data[FAKE_KV_CAP];
        size_t len;
        bool used;
    } kv[FAKE_KV];
    int store_fails_after; /* -1: never; else this many more stores work */
    int stores;
    uint64_t security_floor;
    /* factory image */
    const char *factory_version;
    /* HTTP */
    const uint8_t *body;
    size_t body_len;
    int status;
    fake_http_mode mode;
    size_t cut_at;
    int requests;
    uint64_t offsets[16];
    /* MQTT */
    fwl_mqtt_event events[FAKE_EVENTS];
    uint8_t event_payload[FAKE_EVENTS][1024];
    size_t event_count, event_next;
    fake_publish publishes[FAKE_PUBLISHES];
    size_t publish_count;
    char subscribed[FWL_MQTT_TOPIC_MAX];
    int connects, disconnects;
    int polls;
    int stop_at_poll; /* mqtt_poll sets `stop` at this poll (0: never) */
    volatile int stop;
    /* clock, restart, checks */
    uint64_t now;
    uint64_t ticks;
    int restarts;
    bool self_check_fails;
    char last_status[2048];
    int statuses;
    /* power cuts: every persistent effect (slot begin/write/finalize, boot loader calls, state
     * stores) is counted; the one numbered `cut_at_effect` (>= 0) does not happen: the power
     * goes first and control returns to `power_cut` (longjmp), storage as it was. */
    int cut_at_effect; /* -1: never */
    int effects;
    jmp_buf *power_cut;
    const char *effect_names[FAKE_EFFECTS];
} fake;

extern const fwl_hal fake_hal;

/* A fresh device: empty state, boot loader on slot A, now = `now`. */
void fake_init(fake *f, uint64_t now);
/* Power-on: the boot loader's step (a pending slot becomes a trial; a trial counts a boot). */
void fake_power_on(fake *f);
/* Queues an MQTT event for mqtt_poll. */
void fake_event(fake *f, fwl_mqtt_event_kind kind, const char *topic, const uint8_t *payload,
                size_t len);
/* The stored value of `key`, NUL-terminated (record JSON), or NULL. */
const char *fake_value(fake *f, const char *key);

#endif
