/* Provisioning bundle: parse, check, write. See include/fwl_bundle.h. */
#include "fwl_bundle.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fwl_json.h"
#include "util.h"

#define BUNDLE_TOKENS 128

static int set_err(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    if (err != NULL && cap > 0) {
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int fwl_device_id_valid(const char *id) {
    size_t n = 0;
    if (id == NULL) return 0;
    for (; id[n] != '\0'; n++) {
        char c = id[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok || n >= 64) return 0;
    }
    return n >= 1;
}

/* Copies string member `key` of object `obj`; `required` decides whether absence is an error.
 * A JSON null counts as absent. */
static int str_member(const fwl_json_doc *d, int obj, const char *key, char *out, size_t cap,
                      int required, char *err, size_t err_cap) {
    int t = fwl_json_get(d, obj, key);
    out[0] = '\0';
    if (t < 0 || fwl_json_type_of(d, t) == FWL_JSON_NULL) {
        if (required) return set_err(err, err_cap, "provisioning bundle: missing field `%s`", key);
        return 0;
    }
    if (fwl_json_type_of(d, t) != FWL_JSON_STRING)
        return set_err(err, err_cap, "provisioning bundle: `%s` is not a string", key);
    if (fwl_json_string(d, t, out, cap, NULL) != 0)
        return set_err(err, err_cap,
                       "provisioning bundle: `%s` is too long (at most %u bytes) or invalid", key,
                       (unsigned)(cap - 1));
    return 0;
}

int fwl_bundle_check(const fwl_bundle *b, char *err, size_t err_cap) {
    if (!fwl_device_id_valid(b->device_id))
        return set_err(err, err_cap, "provisioning bundle: invalid device id");
    if (b->vendor_count == 0)
        return set_err(err, err_cap, "provisioning bundle: no trusted vendor key");
    if (strncmp(b->mqtt_url, "mqtts://", 8) != 0 && strncmp(b->mqtt_url, "mqtt://", 7) != 0)
        return set_err(err, err_cap,
                       "provisioning bundle: mqtt_url must be mqtts://HOST:PORT or mqtt://HOST:PORT");
    if (b->model[0] == '\0' || b->hardware[0] == '\0')
        return set_err(err, err_cap, "provisioning bundle: empty model or hardware");
    return 0;
}

int fwl_bundle_parse(fwl_bundle *b, const char *json, size_t len, char *err, size_t err_cap) {
    static const char *const vendors_hint = "provisioning bundle: `vendors` must be a list of {name, key}";
    fwl_json_tok toks[BUNDLE_TOKENS];
    fwl_json_doc d;
    size_t at = 0, i;
    uint64_t format;
    int t, vendors, rc;

    memset(b, 0, sizeof *b);
    if (len > FWL_BUNDLE_MAX)
        return set_err(err, err_cap, "provisioning bundle: larger than %u bytes",
                       (unsigned)FWL_BUNDLE_MAX);
    rc = fwl_json_parse(&d, json, len, toks, BUNDLE_TOKENS, &at);
    if (rc != FWL_JSON_OK)
        return set_err(err, err_cap, "provisioning bundle: %s at byte %u",
                       rc == FWL_JSON_ERR_TOO_MANY ? "too many JSON values"
                       : rc == FWL_JSON_ERR_TOO_DEEP ? "nested too deeply"
                                                     : "not valid JSON",
                       (unsigned)at);
    if (fwl_json_type_of(&d, 0) != FWL_JSON_OBJECT)
        return set_err(err, err_cap, "provisioning bundle: not a JSON object");
    t = fwl_json_get(&d, 0, "format");
    if (t < 0 || fwl_json_u64(&d, t, &format) != 0)
        return set_err(err, err_cap, "provisioning bundle: missing field `format`");
    if (format != 1) return set_err(err, err_cap, "provisioning bundle: unknown format");

    if (str_member(&d, 0, "device_id", b->device_id, sizeof b->device_id, 1, err, err_cap) ||
        str_member(&d, 0, "mac", b->mac, sizeof b->mac, 1, err, err_cap) ||
        str_member(&d, 0, "model", b->model, sizeof b->model, 1, err, err_cap) ||
        str_member(&d, 0, "hardware", b->hardware, sizeof b->hardware, 1, err, err_cap) ||
        str_member(&d, 0, "mqtt_url", b->mqtt_url, sizeof b->mqtt_url, 1, err, err_cap) ||
        str_member(&d, 0, "http_url", b->http_url, sizeof b->http_url, 1, err, err_cap) ||
        str_member(&d, 0, "sntp", b->sntp, sizeof b->sntp, 0, err, err_cap) ||
        str_member(&d, 0, "ca_cert_pem", b->ca_cert_pem, sizeof b->ca_cert_pem, 1, err, err_cap) ||
        str_member(&d, 0, "device_cert_pem", b->device_cert_pem, sizeof b->device_cert_pem, 1, err,
                   err_cap) ||
        str_member(&d, 0, "device_key_pem", b->device_key_pem, sizeof b->device_key_pem, 1, err,
                   err_cap) ||
        str_member(&d, 0, "wifi_ssid", b->wifi_ssid, sizeof b->wifi_ssid, 0, err, err_cap) ||
        str_member(&d, 0, "wifi_password", b->wifi_password, sizeof b->wifi_password, 0, err,
                   err_cap))
        return -1;

    vendors = fwl_json_get(&d, 0, "vendors");
    if (vendors < 0) return set_err(err, err_cap, "provisioning bundle: missing field `vendors`");
    if (fwl_json_type_of(&d, vendors) != FWL_JSON_ARRAY) return set_err(err, err_cap, "%s", vendors_hint);
    if (d.toks[vendors].count > FWL_MAX_VENDORS)
        return set_err(err, err_cap, "provisioning bundle: more than %d trusted vendors",
                       FWL_MAX_VENDORS);
    for (i = 0; i < d.toks[vendors].count; i++) {
        int v = fwl_json_at(&d, vendors, i);
        char hex[65];
        fwl_vendor *out = &b->vendors[b->vendor_count];
        if (fwl_json_type_of(&d, v) != FWL_JSON_OBJECT) return set_err(err, err_cap, "%s", vendors_hint);
        if (str_member(&d, v, "name", out->name, sizeof out->name, 1, err, err_cap) ||
            str_member(&d, v, "key", hex, sizeof hex, 1, err, err_cap))
            return -1;
        if (strlen(hex) != 64 || fwl_hex_decode(hex, out->key, sizeof out->key) != 32)
            return set_err(err, err_cap,
                           "provisioning bundle: vendor key is not 64 hex characters");
        b->vendor_count++;
    }
    return fwl_bundle_check(b, err, err_cap);
}

long fwl_bundle_write(const fwl_bundle *b, char *out, size_t cap) {
    fwl_jw w;
    size_t i;
    fwl_jw_init(&w, out, cap);
    fwl_jw_object(&w);
    fwl_jw_key(&w, "format");
    fwl_jw_u64(&w, 1);
    fwl_jw_key(&w, "device_id");
    fwl_jw_string(&w, b->device_id);
    fwl_jw_key(&w, "mac");
    fwl_jw_string(&w, b->mac);
    fwl_jw_key(&w, "model");
    fwl_jw_string(&w, b->model);
    fwl_jw_key(&w, "hardware");
    fwl_jw_string(&w, b->hardware);
    fwl_jw_key(&w, "mqtt_url");
    fwl_jw_string(&w, b->mqtt_url);
    fwl_jw_key(&w, "http_url");
    fwl_jw_string(&w, b->http_url);
    if (b->sntp[0] != '\0') {
        fwl_jw_key(&w, "sntp");
        fwl_jw_string(&w, b->sntp);
    }
    fwl_jw_key(&w, "ca_cert_pem");
    fwl_jw_string(&w, b->ca_cert_pem);
    fwl_jw_key(&w, "device_cert_pem");
    fwl_jw_string(&w, b->device_cert_pem);
    fwl_jw_key(&w, "device_key_pem");
    fwl_jw_string(&w, b->device_key_pem);
    fwl_jw_key(&w, "vendors");
    fwl_jw_array(&w);
    for (i = 0; i < b->vendor_count; i++) {
        fwl_jw_object(&w);
        fwl_jw_key(&w, "name");
        fwl_jw_string(&w, b->vendors[i].name);
        fwl_jw_key(&w, "key");
        fwl_jw_hex(&w, b->vendors[i].key, 32);
        fwl_jw_object_end(&w);
    }
    fwl_jw_array_end(&w);
    if (b->wifi_ssid[0] != '\0') {
        fwl_jw_key(&w, "wifi_ssid");
        fwl_jw_string(&w, b->wifi_ssid);
    }
    if (b->wifi_password[0] != '\0') {
        fwl_jw_key(&w, "wifi_password");
        fwl_jw_string(&w, b->wifi_password);
    }
    fwl_jw_object_end(&w);
    return fwl_jw_finish(&w);
}
