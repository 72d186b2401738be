/*
 * fwledger_start(): NVS → configuration button / bundle → agent boot (self-check, confirm or
 * roll back, before anything else needs the network) → Wi-Fi → SNTP → the agent task.
 * Written against ESP-IDF v5.1+ (esp_netif_sntp); not compiled in this repository's CI.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "driver/gpio.h"
#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_netif_sntp.h"
#include "esp_system.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/event_groups.h"
#include "freertos/task.h"
#include "fwl_agent.h"
#include "fwl_port_esp.h"
#include "nvs_flash.h"
#include "sdkconfig.h"
#include "util.h"

static const char *TAG = "fwledger";

/* Everything in static memory: the bundle (~13 KiB), its JSON (16 KiB), the agent (~30 KiB). */
static fwl_bundle s_bundle;
static fwl_agent s_agent;
static char s_json[FWL_BUNDLE_MAX + 1];
static EventGroupHandle_t s_wifi_events;
#define WIFI_UP BIT0

esp_err_t fwledger_store_bundle(const char *json, size_t len, char *err, size_t err_cap) {
    if (fwl_bundle_parse(&s_bundle, json, len, err, err_cap) != 0) return ESP_ERR_INVALID_ARG;
    return fwl_esp_nvs_set(FWL_ESP_BUNDLE_KEY, json, len);
}

static bool button_held(void) {
#if CONFIG_FWLEDGER_CONFIG_BUTTON_GPIO >= 0
    gpio_config_t io = {
        .pin_bit_mask = 1ULL << CONFIG_FWLEDGER_CONFIG_BUTTON_GPIO,
        .mode = GPIO_MODE_INPUT,
        .pull_up_en = GPIO_PULLUP_ENABLE,
        .pull_down_en = GPIO_PULLDOWN_DISABLE,
        .intr_type = GPIO_INTR_DISABLE,
    };
    int i, low = 0;
    gpio_config(&io);
    for (i = 0; i < 10; i++) { /* 100 ms, debounced: held = low (pressed) every time */
        if (gpio_get_level(CONFIG_FWLEDGER_CONFIG_BUTTON_GPIO) == 0) low++;
        vTaskDelay(pdMS_TO_TICKS(10));
    }
    return low == 10;
#else
    return false;
#endif
}

static void on_wifi(void *arg, esp_event_base_t base, int32_t id, void *data) {
    (void)arg;
    (void)data;
    if (base == WIFI_EVENT && id == WIFI_EVENT_STA_START) {
        esp_wifi_connect();
    } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
        xEventGroupClearBits(s_wifi_events, WIFI_UP);
        vTaskDelay(pdMS_TO_TICKS(1000));
        esp_wifi_connect(); /* MQTT reconnects by itself once the network is back */
    } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
        xEventGroupSetBits(s_wifi_events, WIFI_UP);
    }
}

static esp_err_t wifi_start(const char *ssid, const char *password) {
    wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
    wifi_config_t wc;
    s_wifi_events = xEventGroupCreate();
    esp_netif_create_default_wifi_sta();
    ESP_ERROR_CHECK(esp_wifi_init(&init));
    ESP_ERROR_CHECK(esp_event_handler_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_wifi, NULL));
    ESP_ERROR_CHECK(esp_event_handler_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_wifi, NULL));
    memset(&wc, 0, sizeof wc);
    /* ssid: up to 32 bytes, password: up to 64, neither needs a NUL when full */
    memcpy(wc.sta.ssid, ssid, strnlen(ssid, sizeof wc.sta.ssid));
    memcpy(wc.sta.password, password, strnlen(password, sizeof wc.sta.password));
    wc.sta.threshold.authmode = password[0] != '\0' ? WIFI_AUTH_WPA2_PSK : WIFI_AUTH_OPEN;
    ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_STA));
    ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_STA, &wc));
    ESP_ERROR_CHECK(esp_wifi_start());
    if (!(xEventGroupWaitBits(s_wifi_events, WIFI_UP, pdFALSE, pdTRUE, pdMS_TO_TICKS(30000)) &
          WIFI_UP))
        ESP_LOGW(TAG, "no Wi-Fi yet (%s); the agent waits for it", ssid);
    return ESP_OK;
}

static void on_time(struct timeval *tv) {
    (void)tv;
    fwl_esp_set_time_synced(true);
}

/* SNTP from Kconfig, else the gateway's (bundle `sntp` HOST:PORT; lwIP SNTP uses port 123). */
static void time_start(void) {
    static char host[128];
    const char *server = CONFIG_FWLEDGER_SNTP_SERVER;
    if (server[0] == '\0' && s_bundle.sntp[0] != '\0') {
        char *colon;
        fwl_strcpy(host, sizeof host, s_bundle.sntp);
        colon = strrchr(host, ':');
        if (colon != NULL && strchr(host, ']') == NULL) {
            if (strcmp(colon + 1, "123") != 0)
                ESP_LOGW(TAG, "SNTP port %s ignored: lwIP asks port 123", colon + 1);
            *colon = '\0';
        }
        server = host;
    }
    if (server[0] == '\0') {
        ESP_LOGW(TAG, "no SNTP server: time checks are skipped (no trusted clock)");
        return;
    }
    {
        esp_sntp_config_t cfg = ESP_NETIF_SNTP_DEFAULT_CONFIG(server);
        cfg.sync_cb = on_time;
        esp_netif_sntp_init(&cfg);
        if (esp_netif_sntp_sync_wait(pdMS_TO_TICKS(10000)) == ESP_OK) fwl_esp_set_time_synced(true);
        else ESP_LOGW(TAG, "no SNTP answer yet from %s", server);
    }
}

static void settings_from_kconfig(fwl_agent_settings *s) {
    fwl_agent_settings_default(s);
    s->check_interval_s = CONFIG_FWLEDGER_CHECK_INTERVAL_S;
    s->max_boot_attempts = CONFIG_FWLEDGER_MAX_BOOT_ATTEMPTS;
    s->min_download_rate = CONFIG_FWLEDGER_MIN_DOWNLOAD_RATE;
    s->download_grace_s = CONFIG_FWLEDGER_DOWNLOAD_GRACE_S;
    s->stall_timeout_s = CONFIG_FWLEDGER_STALL_TIMEOUT_S;
    s->retry_after_s = CONFIG_FWLEDGER_RETRY_AFTER_S;
    s->keepalive_s = CONFIG_FWLEDGER_KEEPALIVE_S;
#if CONFIG_FWLEDGER_SELF_CHECK_MARKER
    s->self_check_marker = true;
#endif
}

static void agent_task(void *arg) {
    int rc;
    (void)arg;
    rc = fwl_agent_serve(&s_agent, NULL);
    if (rc == FWL_AGENT_RESTART) esp_restart();
    ESP_LOGE(TAG, "the agent stopped (%d)", rc);
    vTaskDelete(NULL);
}

esp_err_t fwledger_start(void) {
    fwl_agent_settings settings;
    char err[200];
    size_t len = 0;
    bool have;
    int rc;
    esp_err_t e = nvs_flash_init();
    if (e == ESP_ERR_NVS_NO_FREE_PAGES || e == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_ERROR_CHECK(nvs_flash_erase());
        e = nvs_flash_init();
    }
    ESP_ERROR_CHECK(e);
    ESP_ERROR_CHECK(esp_netif_init());
    ESP_ERROR_CHECK(esp_event_loop_create_default());

    have = fwl_esp_nvs_get(FWL_ESP_BUNDLE_KEY, s_json, sizeof s_json - 1, &len) == ESP_OK;
    if (have) {
        s_json[len] = '\0';
        have = fwl_bundle_parse(&s_bundle, s_json, len, err, sizeof err) == 0;
        if (!have) ESP_LOGE(TAG, "stored bundle: %s", err);
    }
    if (!have || s_bundle.wifi_ssid[0] == '\0' || button_held()) {
        /* The paper's provisioning flow: a page to upload the bundle, then restart. */
        ESP_ERROR_CHECK(fwledger_config_mode(have ? s_bundle.device_id : "unprovisioned"));
        esp_restart();
    }

    if (CONFIG_FWLEDGER_MQTT_URL[0] != '\0') /* the gateway moved: override the bundle */
        fwl_strcpy(s_bundle.mqtt_url, sizeof s_bundle.mqtt_url, CONFIG_FWLEDGER_MQTT_URL);
    settings_from_kconfig(&settings);
    fwl_esp_hal_set_bundle(&s_bundle);
    if (fwl_agent_init(&s_agent, &fwl_esp_hal, NULL, &s_bundle, &settings) != FWL_AGENT_OK)
        return ESP_ERR_INVALID_STATE;
    /* Boot first: a new image is self-checked and confirmed (or rolled back) right away. */
    rc = fwl_agent_boot(&s_agent);
    if (rc == FWL_AGENT_RESTART) esp_restart();
    if (rc != FWL_AGENT_OK) {
        ESP_LOGE(TAG, "agent boot failed (%d)", rc);
        return ESP_FAIL;
    }
    ESP_ERROR_CHECK(wifi_start(s_bundle.wifi_ssid, s_bundle.wifi_password));
    time_start();
    if (xTaskCreate(agent_task, "fwledger", CONFIG_FWLEDGER_TASK_STACK, NULL, 5, NULL) != pdPASS)
        return ESP_ERR_NO_MEM;
    return ESP_OK;
}
