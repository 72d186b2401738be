/*
 * Configuration mode on the ESP32 (the paper's provisioning flow): the device opens a Wi-Fi
 * access point (Kconfig FWLEDGER_CONFIG_AP_SSID), serves the configuration page at
 * http://192.168.4.1/ (esp_http_server) and prints a QR code of the device id + page URL on the
 * console (espressif/qrcode). The page uploads the provisioning bundle and sets Wi-Fi and MQTT;
 * the bundle is checked (fwl_config_apply) and stored in NVS, then the device restarts.
 * Written against ESP-IDF v5; not compiled in this repository's CI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_http_server.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "fwl_config_form.h"
#include "fwl_port_esp.h"
#include "qrcode.h"
#include "sdkconfig.h"
#include "util.h"

static const char *TAG = "fwledger-config";

#define BODY_MAX (3 * FWL_BUNDLE_MAX) /* a urlencoded bundle */

/* Configuration mode runs instead of the agent (then the device restarts), so its buffers come
 * from the heap once (~100 KiB) rather than sitting in .bss next to the agent's. */
typedef struct {
    char body[BODY_MAX + 1];
    char field[FWL_BUNDLE_MAX + 1];
    char current[FWL_BUNDLE_MAX + 1];
    char out[FWL_BUNDLE_MAX + 1];
    char page[8192];
    fwl_bundle bundle;
} config_buffers;

static config_buffers *s_buf;
static const char *s_device_id;
static SemaphoreHandle_t s_saved;

#define s_body (s_buf->body)
#define s_field (s_buf->field)
#define s_current (s_buf->current)
#define s_out (s_buf->out)
#define s_page (s_buf->page)
#define s_new (s_buf->bundle)

static esp_err_t get_page(httpd_req_t *req) {
    fwl_config_page(s_page, sizeof s_page, s_device_id, NULL, false);
    httpd_resp_set_type(req, "text/html; charset=utf-8");
    httpd_resp_set_hdr(req, "Cache-Control", "no-store");
    return httpd_resp_send(req, s_page, HTTPD_RESP_USE_STRLEN);
}

static esp_err_t post_configure(httpd_req_t *req) {
    char err[200];
    size_t got = 0, current_len = 0;
    long n;
    bool have;
    if (req->content_len > BODY_MAX) {
        httpd_resp_send_err(req, HTTPD_400_BAD_REQUEST, "too large");
        return ESP_FAIL;
    }
    while (got < req->content_len) {
        int r = httpd_req_recv(req, s_body + got, req->content_len - got);
        if (r == HTTPD_SOCK_ERR_TIMEOUT) continue;
        if (r <= 0) return ESP_FAIL;
        got += (size_t)r;
    }
    s_body[got] = '\0';
    have = fwl_esp_nvs_get(FWL_ESP_BUNDLE_KEY, s_current, sizeof s_current - 1, &current_len) ==
           ESP_OK;
    if (have) s_current[current_len] = '\0';
    httpd_resp_set_type(req, "text/html; charset=utf-8");
    if (fwl_config_apply(s_body, have ? s_current : NULL, current_len, &s_new, s_field,
                         sizeof s_field, err, sizeof err) != 0) {
        fwl_config_page(s_page, sizeof s_page, s_device_id, err, true);
        httpd_resp_set_status(req, "400 Bad Request");
        return httpd_resp_send(req, s_page, HTTPD_RESP_USE_STRLEN);
    }
    n = fwl_bundle_write(&s_new, s_out, sizeof s_out);
    if (n < 0 || fwl_esp_nvs_set(FWL_ESP_BUNDLE_KEY, s_out, (size_t)n) != ESP_OK) {
        fwl_config_page(s_page, sizeof s_page, s_device_id, "The configuration could not be saved.",
                        true);
        httpd_resp_set_status(req, "500 Internal Server Error");
        return httpd_resp_send(req, s_page, HTTPD_RESP_USE_STRLEN);
    }
    fwl_config_page(s_page, sizeof s_page, s_new.device_id,
                    "Saved. The device restarts in normal mode.", false);
    httpd_resp_send(req, s_page, HTTPD_RESP_USE_STRLEN);
    xSemaphoreGive(s_saved);
    return ESP_OK;
}

esp_err_t fwledger_config_mode(const char *device_id) {
    wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
    wifi_config_t ap;
    httpd_config_t hc = HTTPD_DEFAULT_CONFIG();
    httpd_handle_t server = NULL;
    httpd_uri_t page = {.uri = "/", .method = HTTP_GET, .handler = get_page, .user_ctx = NULL};
    httpd_uri_t post = {
        .uri = "/configure", .method = HTTP_POST, .handler = post_configure, .user_ctx = NULL};
    esp_qrcode_config_t qr = ESP_QRCODE_CONFIG_DEFAULT();
    char text[160];

    s_buf = calloc(1, sizeof *s_buf);
    if (s_buf == NULL) return ESP_ERR_NO_MEM;
    s_device_id = device_id;
    s_saved = xSemaphoreCreateBinary();
    esp_netif_create_default_wifi_ap();
    ESP_ERROR_CHECK(esp_wifi_init(&init));
    memset(&ap, 0, sizeof ap);
    fwl_strcpy((char *)ap.ap.ssid, sizeof ap.ap.ssid, CONFIG_FWLEDGER_CONFIG_AP_SSID);
    ap.ap.ssid_len = (uint8_t)strlen((const char *)ap.ap.ssid);
    fwl_strcpy((char *)ap.ap.password, sizeof ap.ap.password, CONFIG_FWLEDGER_CONFIG_AP_PASSWORD);
    ap.ap.authmode = strlen(CONFIG_FWLEDGER_CONFIG_AP_PASSWORD) >= 8 ? WIFI_AUTH_WPA2_PSK
                                                                       : WIFI_AUTH_OPEN;
    ap.ap.channel = 1;
    ap.ap.max_connection = 2;
    ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_AP));
    ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_AP, &ap));
    ESP_ERROR_CHECK(esp_wifi_start());

    hc.stack_size = 8192;
    ESP_ERROR_CHECK(httpd_start(&server, &hc));
    httpd_register_uri_handler(server, &page);
    httpd_register_uri_handler(server, &post);

    snprintf(text, sizeof text, "http://192.168.4.1/?device=%s", device_id);
    ESP_LOGI(TAG, "configuration mode: join Wi-Fi \"%s\" and open %s", CONFIG_FWLEDGER_CONFIG_AP_SSID,
             text);
    esp_qrcode_generate(&qr, text);

    xSemaphoreTake(s_saved, portMAX_DELAY);
    vTaskDelay(pdMS_TO_TICKS(1000)); /* let the answer reach the browser */
    httpd_stop(server);
    esp_wifi_stop();
    return ESP_OK;
}
