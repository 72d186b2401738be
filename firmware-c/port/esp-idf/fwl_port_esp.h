/*
 * The ESP-IDF (v5.x) port of the fwledger C device agent.
 *
 *   #include "fwl_port_esp.h"
 *   void app_main(void) { ESP_ERROR_CHECK(fwledger_start()); }
 *
 * fwledger_start(): initialises NVS; if the configuration button is held at boot (or no bundle
 * is stored) enters configuration mode (soft AP + web page + QR code on the console, see
 * fwl_config_esp.c); otherwise loads the provisioning bundle from NVS, joins Wi-Fi, syncs the
 * clock over SNTP (esp_netif_sntp), and runs the agent in its own task. The agent confirms a
 * freshly installed image (esp_ota_mark_app_valid_cancel_rollback) only after its self-check,
 * so call fwledger_start() early in app_main and keep your own start-up checks in
 * fwledger_set_self_check().
 *
 * Requires: CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y and a partition table with ota_0, ota_1
 * and otadata (no factory app; see partitions.csv). Optional: CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
 * (eFuse secure_version; the image's secure_version must equal the manifest's security_version).
 */
#ifndef FWL_PORT_ESP_H
#define FWL_PORT_ESP_H

#include <stdbool.h>
#include <stddef.h>

#include "esp_err.h"
#include "fwl_bundle.h"
#include "fwl_hal.h"

#ifdef __cplusplus
extern "C" {
#endif

/** NVS key under which the provisioning bundle (JSON) is stored. */
#define FWL_ESP_BUNDLE_KEY "bundle"

/** The HAL table of this port (ctx: NULL; the port keeps its state in static memory). */
extern const fwl_hal fwl_esp_hal;

/** The application's health check of a new image before it is confirmed: return ESP_OK to
 *  confirm, anything else (with a message in `msg`) to roll back. Set it before
 *  fwledger_start(). */
typedef esp_err_t (*fwl_esp_self_check_fn)(char *msg, size_t cap);
void fwledger_set_self_check(fwl_esp_self_check_fn fn);

/** Starts the device: configuration mode or the agent task (see above). */
esp_err_t fwledger_start(void);

/** Stores a provisioning bundle (JSON) in NVS after checking it. */
esp_err_t fwledger_store_bundle(const char *json, size_t len, char *err, size_t err_cap);

/** Configuration mode (fwl_config_esp.c): soft AP, web page, QR code. Returns after a valid
 *  bundle was saved (then the caller restarts). */
esp_err_t fwledger_config_mode(const char *device_id);

/* Used by fwl_config_esp.c and fwl_esp_app.c. */
void fwl_esp_hal_set_bundle(const struct fwl_bundle *b);
void fwl_esp_set_time_synced(bool synced);
esp_err_t fwl_esp_nvs_get(const char *key, void *buf, size_t cap, size_t *len);
esp_err_t fwl_esp_nvs_set(const char *key, const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif
