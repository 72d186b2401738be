#include "fake_hal.h"

#include <stdio.h>
#include <string.h>

#include "sha256.h"
#include "util.h"

void fake_init(fake *f, uint64_t now) {
    memset(f, 0, sizeof *f);
    f->writing = -1;
    f->pending = -1;
    f->active = FWL_SLOT_A;
    f->store_fails_after = -1;
    f->factory_version = "1.0.0";
    f->status = 200;
    f->now = now;
    f->ticks = 1000;
    f->cut_at_effect = -1;
}

/* A persistent effect is about to happen: count it, or cut the power before it. */
static void effect(fake *f, const char *name) {
    if (f->cut_at_effect >= 0 && f->effects == f->cut_at_effect && f->power_cut != NULL) {
        f->writing = -1;
        longjmp(*f->power_cut, 1);
    }
    if (f->effects < FAKE_EFFECTS) f->effect_names[f->effects] = name;
    f->effects++;
}

void fake_power_on(fake *f) {
    f->writing = -1;
    f->event_count = f->event_next = 0;
    if (f->pending >= 0 && !f->loader_ignores_pending) {
        f->active = (fwl_slot)f->pending;
        f->trial = true;
        f->attempts = 0;
    }
    f->pending = -1;
    if (f->trial) f->attempts++;
}

void fake_event(fake *f, fwl_mqtt_event_kind kind, const char *topic, const uint8_t *payload,
                size_t len) {
    fwl_mqtt_event *e;
    if (f->event_count >= FAKE_EVENTS || len > sizeof f->event_payload[0]) return;
    e = &f->events[f->event_count];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    if (topic != NULL) fwl_strcpy(e->topic, sizeof e->topic, topic);
    e->len = len;
    if (len > 0) memcpy(f->event_payload[f->event_count], payload, len);
    f->event_count++;
}

static int kv_find(fake *f, const char *key) {
    int i;
    for (i = 0; i < FAKE_KV; i++)
        if (f->kv[i].used && strcmp(f->kv[i].key, key) == 0) return i;
    return -1;
}

const char *fake_value(fake *f, const char *key) {
    int i = kv_find(f, key);
    if (i < 0 || f->kv[i].len >= FAKE_KV_CAP) return NULL;
    f->kv[i].data[f->kv[i].len] = 0;
    return (const char *)f->kv[i].data;
}

/* ---- MQTT ---- */

static int m_connect(void *ctx, const fwl_mqtt_config *cfg) {
    fake *f = (fake *)ctx;
    (void)cfg;
    f->connects++;
    return FWL_HAL_OK;
}

static void m_disconnect(void *ctx) { ((fake *)ctx)->disconnects++; }

static int m_subscribe(void *ctx, const char *topic, int qos) {
    fake *f = (fake *)ctx;
    (void)qos;
    fwl_strcpy(f->subscribed, sizeof f->subscribed, topic);
    return FWL_HAL_OK;
}

static int m_publish(void *ctx, const char *topic, const void *data, size_t len, int qos,
                     bool retain) {
    fake *f = (fake *)ctx;
    fake_publish *p;
    (void)qos;
    (void)retain;
    if (f->publish_count >= FAKE_PUBLISHES || len >= sizeof p->payload) return FWL_HAL_ERR;
    p = &f->publishes[f->publish_count++];
    fwl_strcpy(p->topic, sizeof p->topic, topic);
    memcpy(p->payload, data, len);
    p->payload[len] = '\0';
    p->len = len;
    return FWL_HAL_OK;
}

static int m_poll(void *ctx, uint32_t timeout_ms, fwl_mqtt_event *ev, uint8_t *buf, size_t cap) {
    fake *f = (fake *)ctx;
    f->polls++;
    if (f->stop_at_poll > 0 && f->polls >= f->stop_at_poll) f->stop = 1;
    if (f->event_next >= f->event_count) {
        f->ticks += timeout_ms;
        return FWL_HAL_ERR_TIMEOUT;
    }
    *ev = f->events[f->event_next];
    ev->truncated = ev->len > cap;
    if (ev->len > cap) ev->len = cap;
    if (ev->len > 0) memcpy(buf, f->event_payload[f->event_next], ev->len);
    f->event_next++;
    return FWL_HAL_OK;
}

/* ---- HTTP ---- */

static int h_get(void *ctx, const fwl_http_request *req, const fwl_http_sink *sink) {
    fake *f = (fake *)ctx;
    size_t from = 0, end, pos;
    int status = f->status;
    int64_t range = -1, length;
    if (f->requests < 16) f->offsets[f->requests] = req->offset;
    f->requests++;
    if (f->mode == FAKE_HTTP_FAIL) return FWL_HAL_ERR;
    if (req->offset > 0 && f->mode != FAKE_HTTP_IGNORE_RANGE && status == 200) {
        status = 206;
        from = (size_t)req->offset;
        range = (int64_t)req->offset + (f->mode == FAKE_HTTP_WRONG_RANGE ? 1 : 0);
    }
    if (from > f->body_len) from = f->body_len;
    length = (int64_t)(f->body_len - from) + (f->mode == FAKE_HTTP_LIE_LENGTH ? 1000 : 0);
    if (f->mode == FAKE_HTTP_NO_LENGTH) length = -1;
    if (sink->on_head(sink->user, status, range, length) != 0) return FWL_HAL_ERR_ABORTED;
    end = f->body_len;
    if ((f->mode == FAKE_HTTP_CUT_FIRST && f->requests == 1) || f->mode == FAKE_HTTP_CUT_ALWAYS ||
        f->mode == FAKE_HTTP_STALL) {
        if (from + f->cut_at < end) end = from + f->cut_at;
    }
    for (pos = from; pos < end;) {
        size_t n = end - pos < 700 ? end - pos : 700;
        f->ticks += 1;
        if (sink->on_body(sink->user, f->body + pos, n) != 0) return FWL_HAL_ERR_ABORTED;
        pos += n;
    }
    if (f->mode == FAKE_HTTP_STALL) return FWL_HAL_ERR_TIMEOUT;
    return FWL_HAL_OK;
}

/* ---- slots ---- */

static int s_boot_info(void *ctx, fwl_boot_info *out) {
    fake *f = (fake *)ctx;
    out->running = f->active;
    out->trial = f->trial;
    out->boot_attempts = f->attempts;
    return FWL_HAL_OK;
}

static int s_factory(void *ctx, fwl_image_info *out) {
    fake *f = (fake *)ctx;
    int n = snprintf((char *)f->slot[0], FAKE_SLOT_CAP, "factory image %s\n", f->factory_version);
    f->slot_len[0] = (size_t)n;
    f->slot_len[1] = 0;
    memset(out, 0, sizeof *out);
    fwl_strcpy(out->version, sizeof out->version, f->factory_version);
    out->size = (uint64_t)n;
    fwl_sha256_digest(f->slot[0], (size_t)n, out->sha256);
    return FWL_HAL_OK;
}

static int s_held(void *ctx, fwl_slot slot, uint64_t *len) {
    *len = ((fake *)ctx)->slot_len[slot];
    return FWL_HAL_OK;
}

static int s_begin(void *ctx, fwl_slot slot, uint64_t size, uint64_t keep) {
    fake *f = (fake *)ctx;
    effect(f, "slot_begin");
    if (slot == f->active || size > FAKE_SLOT_CAP || keep > f->slot_len[slot]) return FWL_HAL_ERR;
    f->slot_len[slot] = (size_t)keep;
    f->writing = (int)slot;
    return FWL_HAL_OK;
}

static int s_write(void *ctx, fwl_slot slot, const uint8_t *data, size_t len) {
    fake *f = (fake *)ctx;
    effect(f, "slot_write");
    if (f->slot_write_fails || f->writing != (int)slot || f->slot_len[slot] + len > FAKE_SLOT_CAP)
        return FWL_HAL_ERR;
    memcpy(f->slot[slot] + f->slot_len[slot], data, len);
    f->slot_len[slot] += len;
    return FWL_HAL_OK;
}

static int s_read(void *ctx, fwl_slot slot, uint64_t offset, uint8_t *buf, size_t len,
                  size_t *got) {
    fake *f = (fake *)ctx;
    *got = 0;
    if (offset >= f->slot_len[slot]) return FWL_HAL_OK;
    if (len > f->slot_len[slot] - offset) len = f->slot_len[slot] - (size_t)offset;
    memcpy(buf, f->slot[slot] + offset, len);
    *got = len;
    return FWL_HAL_OK;
}

static int s_finalize(void *ctx, fwl_slot slot, const fwl_image_info *image) {
    fake *f = (fake *)ctx;
    effect(f, "slot_finalize");
    if (f->writing != (int)slot) return FWL_HAL_ERR;
    f->writing = -1;
    if (f->finalize_invalid) return FWL_HAL_ERR_INVALID_IMAGE;
    return f->slot_len[slot] == image->size ? FWL_HAL_OK : FWL_HAL_ERR;
}

static int s_pending(void *ctx, fwl_slot slot) {
    fake *f = (fake *)ctx;
    effect(f, "set_pending");
    if (slot == f->active) return FWL_HAL_ERR;
    f->pending = (int)slot;
    return FWL_HAL_OK;
}

static int s_valid(void *ctx) {
    fake *f = (fake *)ctx;
    effect(f, "mark_valid");
    f->trial = false;
    f->attempts = 0;
    return FWL_HAL_OK;
}

static int s_rollback(void *ctx) {
    fake *f = (fake *)ctx;
    effect(f, "rollback");
    f->active = FWL_SLOT_OTHER(f->active);
    f->trial = false;
    f->attempts = 0;
    f->pending = -1;
    return FWL_HAL_OK;
}

/* ---- state ---- */

static int k_load(void *ctx, const char *key, uint8_t *buf, size_t cap, size_t *len) {
    fake *f = (fake *)ctx;
    int i = kv_find(f, key);
    if (i < 0) return FWL_HAL_ERR_NOT_FOUND;
    if (f->kv[i].len > cap) return FWL_HAL_ERR_TOO_BIG;
    memcpy(buf, f->kv[i].data, f->kv[i].len);
    *len = f->kv[i].len;
    return FWL_HAL_OK;
}

static int k_store(void *ctx, const char *key, const uint8_t *data, size_t len) {
    fake *f = (fake *)ctx;
    int i = kv_find(f, key);
    effect(f, strcmp(key, "record") == 0 ? "store_record" : "store_notice");
    if (f->store_fails_after == 0) return FWL_HAL_ERR;
    if (f->store_fails_after > 0) f->store_fails_after--;
    if (len >= FAKE_KV_CAP) return FWL_HAL_ERR;
    if (i < 0) {
        for (i = 0; i < FAKE_KV && f->kv[i].used; i++) {
        }
        if (i == FAKE_KV) return FWL_HAL_ERR;
        f->kv[i].used = true;
        fwl_strcpy(f->kv[i].key, sizeof f->kv[i].key, key);
    }
    memcpy(f->kv[i].data, data, len);
    f->kv[i].len = len;
    f->stores++;
    return FWL_HAL_OK;
}

static int k_floor(void *ctx, uint64_t *floor) {
    *floor = ((fake *)ctx)->security_floor;
    return FWL_HAL_OK;
}

/* ---- clock etc. ---- */

static uint64_t c_now(void *ctx) { return ((fake *)ctx)->now; }
static uint64_t c_ticks(void *ctx) { return ++((fake *)ctx)->ticks; }
static void c_sleep(void *ctx, uint32_t ms) { ((fake *)ctx)->ticks += ms; }
static void c_restart(void *ctx) { ((fake *)ctx)->restarts++; }

static void c_observe(void *ctx, const char *json, size_t len) {
    fake *f = (fake *)ctx;
    if (len >= sizeof f->last_status) len = sizeof f->last_status - 1;
    memcpy(f->last_status, json, len);
    f->last_status[len] = '\0';
    f->statuses++;
}

static int c_self_check(void *ctx, fwl_slot slot, char *msg, size_t cap) {
    fake *f = (fake *)ctx;
    (void)slot;
    if (!f->self_check_fails) return FWL_HAL_OK;
    snprintf(msg, cap, "the sensors do not answer");
    return FWL_HAL_ERR;
}

const fwl_hal fake_hal = {
    m_connect, m_disconnect, m_subscribe, m_publish, m_poll,
    h_get,
    s_boot_info, s_factory, s_held, s_begin, s_write, s_read, s_finalize, s_pending, s_valid,
    s_rollback,
    k_load, k_store, k_floor,
    c_now, c_ticks, c_sleep, c_restart, NULL, c_observe, c_self_check,
};
