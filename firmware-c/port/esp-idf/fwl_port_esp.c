/*
 * fwl_hal on ESP-IDF v5: esp-mqtt, esp_http_client, esp_ota_ops (app rollback), NVS, eFuse
 * secure_version, esp_timer. Written and reviewed against the ESP-IDF v5.x API; not compiled in
 * this repository's CI (no Xtensa/RISC-V toolchain there): see firmware-c/README.md.
 *
 * Slots: FWL_SLOT_A = ota_0, FWL_SLOT_B = ota_1. The second-stage boot loader does the switch
 * (esp_ota_set_boot_partition) and the rollback of an image that resets while still
 * ESP_OTA_IMG_PENDING_VERIFY (CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE).
 */
#include "fwl_port_esp.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "esp_app_desc.h"
#include "esp_efuse.h"
#include "esp_http_client.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "esp_partition.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "fwl_agent.h"
#include "mqtt_client.h"
#include "nvs.h"
#include "sdkconfig.h"
#include "util.h"

static const char *TAG = "fwledger";

#ifndef CONFIG_FWLEDGER_NVS_NAMESPACE
#define CONFIG_FWLEDGER_NVS_NAMESPACE "fwledger"
#endif

/* ---- NVS ------------------------------------------------------------------------------------ */

esp_err_t fwl_esp_nvs_get(const char *key, void *buf, size_t cap, size_t *len) {
    nvs_handle_t h;
    size_t n = cap;
    esp_err_t err = nvs_open(CONFIG_FWLEDGER_NVS_NAMESPACE, NVS_READONLY, &h);
    if (err != ESP_OK) return err; /* ESP_ERR_NVS_NOT_FOUND before the first write */
    err = nvs_get_blob(h, key, buf, &n);
    nvs_close(h);
    if (err == ESP_OK) *len = n;
    return err;
}

esp_err_t fwl_esp_nvs_set(const char *key, const void *data, size_t len) {
    nvs_handle_t h;
    esp_err_t err = nvs_open(CONFIG_FWLEDGER_NVS_NAMESPACE, NVS_READWRITE, &h);
    if (err != ESP_OK) return err;
    /* NVS writes one entry atomically: after a power cut the key holds the old or new blob. */
    err = nvs_set_blob(h, key, data, len);
    if (err == ESP_OK) err = nvs_commit(h);
    nvs_close(h);
    return err;
}

static int h_state_load(void *ctx, const char *key, uint8_t *buf, size_t cap, size_t *len) {
    esp_err_t err = fwl_esp_nvs_get(key, buf, cap, len);
    (void)ctx;
    if (err == ESP_OK) return FWL_HAL_OK;
    if (err == ESP_ERR_NVS_NOT_FOUND) return FWL_HAL_ERR_NOT_FOUND;
    if (err == ESP_ERR_NVS_INVALID_LENGTH) return FWL_HAL_ERR_TOO_BIG;
    ESP_LOGE(TAG, "nvs_get_blob(%s): %s", key, esp_err_to_name(err));
    return FWL_HAL_ERR;
}

static int h_state_store(void *ctx, const char *key, const uint8_t *data, size_t len) {
    esp_err_t err = fwl_esp_nvs_set(key, data, len);
    (void)ctx;
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "nvs_set_blob(%s): %s", key, esp_err_to_name(err));
        return FWL_HAL_ERR;
    }
    return FWL_HAL_OK;
}

static int h_security_floor(void *ctx, uint64_t *floor) {
    (void)ctx;
#if CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
    *floor = esp_efuse_read_secure_version();
#else
    *floor = 0;
#endif
    return FWL_HAL_OK;
}

/* ---- slots ---------------------------------------------------------------------------------- */

static const esp_partition_t *slot_partition(fwl_slot s) {
    return esp_partition_find_first(ESP_PARTITION_TYPE_APP,
                                    s == FWL_SLOT_A ? ESP_PARTITION_SUBTYPE_APP_OTA_0
                                                    : ESP_PARTITION_SUBTYPE_APP_OTA_1,
                                    NULL);
}

static struct {
    bool open;
    fwl_slot slot;
    esp_ota_handle_t handle;
    uint64_t written;
    uint64_t size;
} s_ota;

static int h_boot_info(void *ctx, fwl_boot_info *out) {
    const esp_partition_t *run = esp_ota_get_running_partition();
    esp_ota_img_states_t st = ESP_OTA_IMG_UNDEFINED;
    (void)ctx;
    if (run == NULL) return FWL_HAL_ERR;
    if (run->subtype == ESP_PARTITION_SUBTYPE_APP_OTA_0) out->running = FWL_SLOT_A;
    else if (run->subtype == ESP_PARTITION_SUBTYPE_APP_OTA_1) out->running = FWL_SLOT_B;
    else {
        ESP_LOGE(TAG, "the running app is not in ota_0/ota_1 (see firmware-c/port/esp-idf/partitions.csv)");
        return FWL_HAL_ERR;
    }
    out->trial = esp_ota_get_state_partition(run, &st) == ESP_OK && st == ESP_OTA_IMG_PENDING_VERIFY;
    /* The boot loader gives a trial image one boot: a reset before confirming rolls back. */
    out->boot_attempts = out->trial ? 1 : 0;
    return FWL_HAL_OK;
}

static int h_factory_image(void *ctx, fwl_image_info *out) {
    const esp_app_desc_t *app = esp_app_get_description();
    (void)ctx;
    memset(out, 0, sizeof *out);
    /* PROJECT_VER must be a semantic version ("1.0.0"); the boot loader checked the image
     * (size 0 = nothing for the agent to compare). */
    fwl_strcpy(out->version, sizeof out->version, app->version);
    out->security_version = app->secure_version;
    return FWL_HAL_OK;
}

static int h_slot_held(void *ctx, fwl_slot slot, uint64_t *len) {
    (void)ctx;
    /* Within one boot the OTA handle stays open; after a reset the written length is unknown
     * (resuming across resets would need esp_ota_resume, ESP-IDF >= 5.5: not used). */
    *len = s_ota.open && s_ota.slot == slot ? s_ota.written : 0;
    return FWL_HAL_OK;
}

static int h_slot_begin(void *ctx, fwl_slot slot, uint64_t size, uint64_t keep) {
    const esp_partition_t *part = slot_partition(slot);
    const esp_partition_t *run = esp_ota_get_running_partition();
    esp_err_t err;
    (void)ctx;
    if (part == NULL || run == NULL || part->address == run->address || size > part->size) {
        ESP_LOGE(TAG, "slot %c cannot take %" PRIu64 " bytes", slot == FWL_SLOT_A ? 'a' : 'b', size);
        return FWL_HAL_ERR;
    }
    if (keep > 0) {
        if (s_ota.open && s_ota.slot == slot && s_ota.written == keep) return FWL_HAL_OK;
        return FWL_HAL_ERR_UNSUPPORTED;
    }
    if (s_ota.open) esp_ota_abort(s_ota.handle);
    s_ota.open = false;
    /* Erases sector by sector while writing; refuses while the running app is unconfirmed. */
    err = esp_ota_begin(part, OTA_WITH_SEQUENTIAL_WRITES, &s_ota.handle);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_begin: %s", esp_err_to_name(err));
        return FWL_HAL_ERR;
    }
    s_ota.open = true;
    s_ota.slot = slot;
    s_ota.written = 0;
    s_ota.size = size;
    return FWL_HAL_OK;
}

static int h_slot_write(void *ctx, fwl_slot slot, const uint8_t *data, size_t len) {
    esp_err_t err;
    (void)ctx;
    if (!s_ota.open || s_ota.slot != slot) return FWL_HAL_ERR;
    err = esp_ota_write(s_ota.handle, data, len);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_write: %s", esp_err_to_name(err));
        return FWL_HAL_ERR;
    }
    s_ota.written += len;
    return FWL_HAL_OK;
}

static int h_slot_read(void *ctx, fwl_slot slot, uint64_t offset, uint8_t *buf, size_t len,
                       size_t *got) {
    const esp_partition_t *part = slot_partition(slot);
    (void)ctx;
    *got = 0;
    if (part == NULL) return FWL_HAL_ERR;
    if (offset >= part->size) return FWL_HAL_OK;
    if (len > part->size - offset) len = (size_t)(part->size - offset);
    if (esp_partition_read(part, (size_t)offset, buf, len) != ESP_OK) return FWL_HAL_ERR;
    *got = len;
    return FWL_HAL_OK;
}

static int h_slot_finalize(void *ctx, fwl_slot slot, const fwl_image_info *image) {
    esp_app_desc_t desc;
    esp_err_t err;
    (void)ctx;
    if (!s_ota.open || s_ota.slot != slot || s_ota.written != image->size) return FWL_HAL_ERR;
    s_ota.open = false;
    err = esp_ota_end(s_ota.handle); /* validates the app image (and its signature with secure boot) */
    if (err == ESP_ERR_OTA_VALIDATE_FAILED) return FWL_HAL_ERR_INVALID_IMAGE;
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_end: %s", esp_err_to_name(err));
        return FWL_HAL_ERR;
    }
    if (esp_ota_get_partition_description(slot_partition(slot), &desc) != ESP_OK)
        return FWL_HAL_ERR_INVALID_IMAGE;
#if CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
    /* The eFuse counter the boot loader enforces is the image's own secure_version: it must be
     * the security_version the vendor signed in the manifest. */
    if ((uint64_t)desc.secure_version != image->security_version) {
        ESP_LOGE(TAG, "the image's secure_version %" PRIu32 " is not the manifest's %" PRIu64,
                 desc.secure_version, image->security_version);
        return FWL_HAL_ERR_INVALID_IMAGE;
    }
#endif
    if (strcmp(desc.version, image->version) != 0)
        ESP_LOGW(TAG, "the image calls itself %s, the manifest %s", desc.version, image->version);
    return FWL_HAL_OK;
}

static int h_set_pending(void *ctx, fwl_slot slot) {
    esp_err_t err = esp_ota_set_boot_partition(slot_partition(slot));
    (void)ctx;
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_set_boot_partition: %s", esp_err_to_name(err));
        return FWL_HAL_ERR;
    }
    return FWL_HAL_OK;
}

static int h_mark_valid(void *ctx) {
    (void)ctx;
    /* With CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK this also writes the app's secure_version to
     * eFuse (ESP-IDF does it inside). */
    return esp_ota_mark_app_valid_cancel_rollback() == ESP_OK ? FWL_HAL_OK : FWL_HAL_ERR;
}

static int h_rollback(void *ctx) {
    (void)ctx;
    /* Restarts into the previous app when it works; returns only on failure. */
    esp_err_t err = esp_ota_mark_app_invalid_rollback_and_reboot();
    ESP_LOGE(TAG, "rollback failed: %s", esp_err_to_name(err));
    return FWL_HAL_ERR;
}

/* ---- MQTT (esp-mqtt runs its own task) ------------------------------------------------------ */

typedef struct {
    fwl_mqtt_event_kind kind;
} esp_event_msg;

static struct {
    esp_mqtt_client_handle_t client;
    QueueHandle_t queue;
    StaticQueue_t queue_buf;
    uint8_t queue_storage[8 * sizeof(esp_event_msg)];
    SemaphoreHandle_t lock;
    StaticSemaphore_t lock_buf;
    /* assembly of a (possibly fragmented) message, in the MQTT task */
    char rx_topic[FWL_MQTT_TOPIC_MAX];
    uint8_t rx[FWL_NOTICE_MAX];
    size_t rx_len;
    bool rx_truncated;
    /* the latest complete message (notices are retained: the newest wins) */
    char topic[FWL_MQTT_TOPIC_MAX];
    uint8_t latest[FWL_NOTICE_MAX];
    size_t latest_len;
    bool latest_truncated;
    bool has_latest;
    volatile int inflight;
} s_mq;

static void post(fwl_mqtt_event_kind kind) {
    esp_event_msg m = {kind};
    if (xQueueSend(s_mq.queue, &m, 0) != pdTRUE) ESP_LOGW(TAG, "MQTT event queue full");
}

static void mqtt_event(void *arg, esp_event_base_t base, int32_t id, void *data) {
    esp_mqtt_event_handle_t e = (esp_mqtt_event_handle_t)data;
    (void)arg;
    (void)base;
    switch ((esp_mqtt_event_id_t)id) {
    case MQTT_EVENT_CONNECTED: post(FWL_MQTT_CONNECTED); break;
    case MQTT_EVENT_DISCONNECTED: post(FWL_MQTT_DISCONNECTED); break;
    case MQTT_EVENT_PUBLISHED:
        if (s_mq.inflight > 0) s_mq.inflight--;
        break;
    case MQTT_EVENT_DATA: {
        size_t off = (size_t)e->current_data_offset, n = (size_t)e->data_len;
        if (off == 0) { /* first fragment: carries the topic */
            size_t tl = (size_t)e->topic_len < sizeof s_mq.rx_topic - 1 ? (size_t)e->topic_len
                                                                         : sizeof s_mq.rx_topic - 1;
            memcpy(s_mq.rx_topic, e->topic, tl);
            s_mq.rx_topic[tl] = '\0';
            s_mq.rx_len = 0;
            s_mq.rx_truncated = (size_t)e->total_data_len > sizeof s_mq.rx;
        }
        if (off < sizeof s_mq.rx) {
            size_t take = n < sizeof s_mq.rx - off ? n : sizeof s_mq.rx - off;
            memcpy(s_mq.rx + off, e->data, take);
            if (off + take > s_mq.rx_len) s_mq.rx_len = off + take;
        }
        if (off + n >= (size_t)e->total_data_len) { /* complete */
            xSemaphoreTake(s_mq.lock, portMAX_DELAY);
            memcpy(s_mq.topic, s_mq.rx_topic, sizeof s_mq.topic);
            memcpy(s_mq.latest, s_mq.rx, s_mq.rx_len);
            s_mq.latest_len = s_mq.rx_len;
            s_mq.latest_truncated = s_mq.rx_truncated;
            s_mq.has_latest = true;
            xSemaphoreGive(s_mq.lock);
            post(FWL_MQTT_MESSAGE);
        }
        break;
    }
    default: break;
    }
}

static int h_mqtt_connect(void *ctx, const fwl_mqtt_config *cfg) {
    esp_mqtt_client_config_t mc;
    (void)ctx;
    if (s_mq.queue == NULL) {
        s_mq.queue = xQueueCreateStatic(8, sizeof(esp_event_msg), s_mq.queue_storage,
                                        &s_mq.queue_buf);
        s_mq.lock = xSemaphoreCreateMutexStatic(&s_mq.lock_buf);
    }
    xQueueReset(s_mq.queue);
    s_mq.has_latest = false;
    s_mq.inflight = 0;
    if (strncmp(cfg->url, "mqtts://", 8) != 0 &&
        !(strncmp(cfg->url, "mqtt://", 7) == 0 && fwl_url_is_loopback(cfg->url))) {
        ESP_LOGE(TAG, "%s: only mqtts:// is allowed", cfg->url);
        return FWL_HAL_ERR;
    }
    memset(&mc, 0, sizeof mc);
    mc.broker.address.uri = cfg->url;
    mc.broker.verification.certificate = cfg->ca_pem; /* the gateway CA only */
    mc.credentials.client_id = cfg->client_id;
    mc.credentials.authentication.certificate = cfg->cert_pem;
    mc.credentials.authentication.key = cfg->key_pem;
    mc.session.keepalive = cfg->keepalive_s;
    mc.session.disable_clean_session = false;
    mc.network.reconnect_timeout_ms = 5000;
    mc.buffer.size = 2048; /* larger notices arrive in fragments (assembled above) */
    s_mq.client = esp_mqtt_client_init(&mc);
    if (s_mq.client == NULL) return FWL_HAL_ERR;
    esp_mqtt_client_register_event(s_mq.client, (esp_mqtt_event_id_t)ESP_EVENT_ANY_ID, mqtt_event,
                                   NULL);
    if (esp_mqtt_client_start(s_mq.client) != ESP_OK) {
        esp_mqtt_client_destroy(s_mq.client);
        s_mq.client = NULL;
        return FWL_HAL_ERR;
    }
    return FWL_HAL_OK;
}

static void h_mqtt_disconnect(void *ctx) {
    int i;
    (void)ctx;
    if (s_mq.client == NULL) return;
    for (i = 0; i < 100 && s_mq.inflight > 0; i++) vTaskDelay(pdMS_TO_TICKS(20));
    esp_mqtt_client_stop(s_mq.client);
    esp_mqtt_client_destroy(s_mq.client);
    s_mq.client = NULL;
}

static int h_mqtt_subscribe(void *ctx, const char *topic, int qos) {
    (void)ctx;
    if (s_mq.client == NULL) return FWL_HAL_ERR;
    return esp_mqtt_client_subscribe(s_mq.client, topic, qos) >= 0 ? FWL_HAL_OK : FWL_HAL_ERR;
}

static int h_mqtt_publish(void *ctx, const char *topic, const void *data, size_t len, int qos,
                          bool retain) {
    int id;
    (void)ctx;
    if (s_mq.client == NULL || len > INT32_MAX) return FWL_HAL_ERR;
    id = esp_mqtt_client_publish(s_mq.client, topic, (const char *)data, (int)len, qos,
                                 retain ? 1 : 0);
    if (id < 0) return FWL_HAL_ERR;
    if (qos > 0) s_mq.inflight++;
    return FWL_HAL_OK;
}

static int h_mqtt_poll(void *ctx, uint32_t timeout_ms, fwl_mqtt_event *ev, uint8_t *buf,
                       size_t cap) {
    esp_event_msg m;
    (void)ctx;
    if (s_mq.queue == NULL || xQueueReceive(s_mq.queue, &m, pdMS_TO_TICKS(timeout_ms)) != pdTRUE)
        return FWL_HAL_ERR_TIMEOUT;
    ev->kind = m.kind;
    ev->topic[0] = '\0';
    ev->len = 0;
    ev->truncated = false;
    if (m.kind == FWL_MQTT_MESSAGE) {
        xSemaphoreTake(s_mq.lock, portMAX_DELAY);
        if (!s_mq.has_latest) { /* already taken with an earlier event */
            xSemaphoreGive(s_mq.lock);
            return FWL_HAL_ERR_TIMEOUT;
        }
        memcpy(ev->topic, s_mq.topic, sizeof ev->topic);
        ev->len = s_mq.latest_len < cap ? s_mq.latest_len : cap;
        ev->truncated = s_mq.latest_truncated || s_mq.latest_len > cap;
        memcpy(buf, s_mq.latest, ev->len);
        s_mq.has_latest = false;
        xSemaphoreGive(s_mq.lock);
    }
    return FWL_HAL_OK;
}

/* ---- HTTPS (esp_http_client) ---------------------------------------------------------------- */

static const fwl_bundle *s_bundle;

typedef struct {
    int64_t range_start;
} http_ctx;

static esp_err_t http_event(esp_http_client_event_t *e) {
    http_ctx *c = (http_ctx *)e->user_data;
    if (e->event_id == HTTP_EVENT_ON_HEADER && strcasecmp(e->header_key, "Content-Range") == 0 &&
        strncmp(e->header_value, "bytes ", 6) == 0) {
        const char *v = e->header_value + 6;
        int64_t n = 0;
        bool any = false;
        while (*v >= '0' && *v <= '9' && n < INT64_MAX / 10 - 9) {
            n = n * 10 + (*v++ - '0');
            any = true;
        }
        c->range_start = any ? n : -1;
    }
    return ESP_OK;
}

static int h_http_get(void *ctx, const fwl_http_request *req, const fwl_http_sink *sink) {
    esp_http_client_config_t hc;
    esp_http_client_handle_t client;
    http_ctx c = {-1};
    char range[32];
    int64_t length, start = esp_timer_get_time() / 1000, last = start;
    int status, rc = FWL_HAL_OK;
    (void)ctx;

    memset(&hc, 0, sizeof hc);
    hc.url = req->url;
    hc.cert_pem = s_bundle->ca_cert_pem; /* the gateway CA only */
    hc.client_cert_pem = s_bundle->device_cert_pem;
    hc.client_key_pem = s_bundle->device_key_pem;
    hc.timeout_ms = 1000; /* one read; stalls are measured below */
    hc.disable_auto_redirect = true;
    hc.event_handler = http_event;
    hc.user_data = &c;
    hc.buffer_size = 2048;
    client = esp_http_client_init(&hc);
    if (client == NULL) return FWL_HAL_ERR;
    esp_http_client_set_header(client, "Accept-Encoding", "identity");
    if (req->offset > 0) {
        snprintf(range, sizeof range, "bytes=%" PRIu64 "-", req->offset);
        esp_http_client_set_header(client, "Range", range);
    }
    if (esp_http_client_open(client, 0) != ESP_OK) {
        esp_http_client_cleanup(client);
        return FWL_HAL_ERR;
    }
    length = esp_http_client_fetch_headers(client);
    status = esp_http_client_get_status_code(client);
    if (sink->on_head(sink->user, status, c.range_start, length >= 0 ? length : -1) != 0) {
        rc = FWL_HAL_ERR_ABORTED;
        goto out;
    }
    for (;;) {
        int64_t now = esp_timer_get_time() / 1000;
        int n = esp_http_client_read(client, (char *)req->buf, (int)req->buf_len);
        if (n > 0) {
            last = now;
            if (sink->on_body(sink->user, req->buf, (size_t)n) != 0) {
                rc = FWL_HAL_ERR_ABORTED;
                break;
            }
        } else if (n == 0 || n == -ESP_ERR_HTTP_EAGAIN) {
            /* 0 is the end only when the whole body arrived; otherwise a pause. */
            if (esp_http_client_is_complete_data_received(client)) break;
        } else {
            rc = FWL_HAL_ERR;
            break;
        }
        if (now - last >= (int64_t)req->stall_timeout_ms || now - start >= (int64_t)req->total_timeout_ms) {
            rc = FWL_HAL_ERR_TIMEOUT;
            break;
        }
    }
out:
    esp_http_client_close(client);
    esp_http_client_cleanup(client);
    return rc;
}

/* ---- clock, restart, logs ------------------------------------------------------------------- */

static bool s_time_synced;

void fwl_esp_set_time_synced(bool synced) { s_time_synced = synced; }

static uint64_t h_now(void *ctx) {
    struct timeval tv;
    (void)ctx;
    /* Only after an SNTP sync: an unsynced clock would fail every expiry check. */
    if (!s_time_synced || gettimeofday(&tv, NULL) != 0 || tv.tv_sec < 1600000000) return 0;
    return (uint64_t)tv.tv_sec;
}

static uint64_t h_ticks_ms(void *ctx) {
    (void)ctx;
    return (uint64_t)(esp_timer_get_time() / 1000);
}

static void h_sleep_ms(void *ctx, uint32_t ms) {
    (void)ctx;
    vTaskDelay(pdMS_TO_TICKS(ms) > 0 ? pdMS_TO_TICKS(ms) : 1);
}

static void h_restart(void *ctx) {
    (void)ctx;
    esp_restart();
}

static void h_log(void *ctx, int level, const char *msg) {
    (void)ctx;
    if (level <= FWL_LOG_ERROR) ESP_LOGE(TAG, "%s", msg);
    else if (level == FWL_LOG_WARN) ESP_LOGW(TAG, "%s", msg);
    else ESP_LOGI(TAG, "%s", msg);
}

static void h_observe(void *ctx, const char *json, size_t len) {
    (void)ctx;
    ESP_LOGI(TAG, "status %.*s", (int)len, json);
}

static fwl_esp_self_check_fn s_self_check;

void fwledger_set_self_check(fwl_esp_self_check_fn fn) { s_self_check = fn; }

static int h_self_check(void *ctx, fwl_slot slot, char *msg, size_t cap) {
    (void)ctx;
    (void)slot;
    if (s_self_check == NULL) return FWL_HAL_OK;
    return s_self_check(msg, cap) == ESP_OK ? FWL_HAL_OK : FWL_HAL_ERR;
}

void fwl_esp_hal_set_bundle(const fwl_bundle *b) { s_bundle = b; }

const fwl_hal fwl_esp_hal = {
    h_mqtt_connect, h_mqtt_disconnect, h_mqtt_subscribe, h_mqtt_publish, h_mqtt_poll,
    h_http_get,
    h_boot_info, h_factory_image, h_slot_held, h_slot_begin, h_slot_write, h_slot_read,
    h_slot_finalize, h_set_pending, h_mark_valid, h_rollback,
    h_state_load, h_state_store, h_security_floor,
    h_now, h_ticks_ms, h_sleep_ms, h_restart, h_log, h_observe, h_self_check,
};
