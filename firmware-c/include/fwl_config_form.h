/*
 * The configuration page of the provisioning flow, shared by both ports (no IO): the HTML page,
 * and applying a submitted form (application/x-www-form-urlencoded: `bundle` = the bundle JSON,
 * optional `wifi_ssid`, `wifi_password`, `mqtt_url` overrides) to a bundle.
 */
#ifndef FWL_CONFIG_FORM_H
#define FWL_CONFIG_FORM_H

#include <stdbool.h>
#include <stddef.h>

#include "fwl_bundle.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Writes the page (device id, an optional message, the form) into `out`; cut to fit. */
void fwl_config_page(char *out, size_t cap, const char *device_id, const char *message,
                     bool error);

/** Finds form field `name` in a urlencoded `body` and decodes it into `out` (NUL-terminated).
 *  1 found, 0 absent, -1 malformed or longer than `cap` - 1. */
int fwl_form_field(const char *body, const char *name, char *out, size_t cap);

/** Applies a submitted form: the bundle from field `bundle`, or `current` (the stored bundle
 *  JSON, may be NULL) when that field is empty; then the non-empty overrides; then checks it.
 *  `scratch` (`scratch_cap` >= FWL_BUNDLE_MAX + 1 bytes) holds the decoded field. 0, or -1
 *  with a reason for the user in `err`. */
int fwl_config_apply(const char *body, const char *current, size_t current_len, fwl_bundle *out,
                     char *scratch, size_t scratch_cap, char *err, size_t err_cap);

#ifdef __cplusplus
}
#endif

#endif
