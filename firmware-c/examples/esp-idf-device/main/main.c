/* The whole firmware side of fwledger: start the agent early, keep the application's own
 * health check in the self-check hook (a new image is confirmed only when it passes). */
#include "esp_log.h"
#include "fwl_port_esp.h"

static esp_err_t app_self_check(char *msg, size_t cap) {
    /* Replace with real checks (sensors answer, peripherals initialise, …). */
    (void)msg;
    (void)cap;
    return ESP_OK;
}

void app_main(void) {
    fwledger_set_self_check(app_self_check);
    ESP_ERROR_CHECK(fwledger_start());
    ESP_LOGI("app", "running; fwledger updates in the background");
}
