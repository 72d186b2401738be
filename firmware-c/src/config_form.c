/* The configuration page and form handling (shared by the POSIX and ESP-IDF ports). */
#include "fwl_config_form.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static void html_escape(char *out, size_t cap, const char *s) {
    size_t n = strlen(out);
    for (; *s != '\0' && n + 7 < cap; s++) {
        const char *e = NULL;
        switch (*s) {
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '&': e = "&amp;"; break;
        case '"': e = "&quot;"; break;
        case '\'': e = "&#39;"; break;
        default: break;
        }
        if (e != NULL) {
            memcpy(out + n, e, strlen(e));
            n += strlen(e);
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
}

static void append(char *out, size_t cap, const char *fmt, ...) {
    size_t n = strlen(out);
    va_list ap;
    if (n + 1 >= cap) return;
    va_start(ap, fmt);
    vsnprintf(out + n, cap - n, fmt, ap);
    va_end(ap);
}

void fwl_config_page(char *out, size_t cap, const char *device_id, const char *message,
                     bool error) {
    if (cap == 0) return;
    out[0] = '\0';
    append(out, cap, "%s",
           "<!doctype html><html><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width\">"
           "<title>fwledger device setup</title><style>body{font-family:sans-serif;max-width:40em;"
           "margin:2em auto}label{display:block;margin-top:1em}input,textarea{width:100%}"
           "textarea{height:12em;font-family:monospace}.err{color:#b00}.ok{color:#070}</style>"
           "</head><body><h1>fwledger device setup</h1><p>Device <code>");
    html_escape(out, cap, device_id);
    append(out, cap, "%s", "</code></p>");
    if (message != NULL) {
        append(out, cap, "<p class=\"%s\">", error ? "err" : "ok");
        html_escape(out, cap, message);
        append(out, cap, "%s", "</p>");
    }
    append(out, cap, "%s",
           "<form method=\"post\" action=\"/configure\">"
           "<label>Provisioning bundle (from <code>fwledger gateway device add</code>)"
           "<input type=\"file\" id=\"file\" accept=\".json,application/json\"></label>"
           "<textarea name=\"bundle\" id=\"bundle\" placeholder=\"or paste the bundle JSON "
           "here; leave empty to keep the current one\"></textarea>"
           "<label>Wi-Fi network<input name=\"wifi_ssid\" maxlength=\"32\"></label>"
           "<label>Wi-Fi password<input name=\"wifi_password\" type=\"password\" maxlength=\"64\">"
           "</label><label>MQTT broker (mqtts://HOST:PORT; empty keeps the bundle's)"
           "<input name=\"mqtt_url\" maxlength=\"256\"></label>"
           "<p><button type=\"submit\">Save</button></p></form>"
           "<script>document.getElementById('file').onchange=function(e){var f=e.target.files[0];"
           "if(f){f.text().then(function(t){document.getElementById('bundle').value=t;});}};"
           "</script></body></html>");
}

static int hexd(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int fwl_form_field(const char *body, const char *name, char *out, size_t cap) {
    size_t nl = strlen(name);
    const char *p = body;
    if (cap == 0) return -1;
    out[0] = '\0';
    while (*p != '\0') {
        const char *end = strchr(p, '&');
        if (end == NULL) end = p + strlen(p);
        if ((size_t)(end - p) >= nl + 1 && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t n = 0;
            while (v < end) {
                char c = *v++;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    int hi, lo;
                    if (end - v < 2 || (hi = hexd(v[0])) < 0 || (lo = hexd(v[1])) < 0) goto bad;
                    c = (char)((hi << 4) | lo);
                    v += 2;
                    if (c == '\0') goto bad;
                }
                if (n + 1 >= cap) goto bad;
                out[n++] = c;
            }
            out[n] = '\0';
            return 1;
        }
        p = *end == '&' ? end + 1 : end;
    }
    return 0;
bad:
    out[0] = '\0';
    return -1;
}

int fwl_config_apply(const char *body, const char *current, size_t current_len, fwl_bundle *out,
                     char *scratch, size_t scratch_cap, char *err, size_t err_cap) {
    char value[300];
    int rc = fwl_form_field(body, "bundle", scratch, scratch_cap);
    const char *json = scratch;
    size_t len;
    if (rc < 0) {
        snprintf(err, err_cap, "The bundle field is malformed or too large.");
        return -1;
    }
    if (rc == 0 || scratch[strspn(scratch, " \t\r\n")] == '\0') {
        if (current == NULL) {
            snprintf(err, err_cap, "Upload the provisioning bundle first.");
            return -1;
        }
        json = current;
        len = current_len;
    } else {
        len = strlen(scratch);
    }
    if (fwl_bundle_parse(out, json, len, err, err_cap) != 0) return -1;
    if (fwl_form_field(body, "wifi_ssid", value, sizeof out->wifi_ssid) < 0 ||
        fwl_form_field(body, "wifi_password", value, sizeof out->wifi_password) < 0 ||
        fwl_form_field(body, "mqtt_url", value, sizeof out->mqtt_url) < 0) {
        snprintf(err, err_cap, "A field is too long or malformed.");
        return -1;
    }
    if (fwl_form_field(body, "wifi_ssid", value, sizeof out->wifi_ssid) > 0 && value[0] != '\0')
        fwl_strcpy(out->wifi_ssid, sizeof out->wifi_ssid, value);
    if (fwl_form_field(body, "wifi_password", value, sizeof out->wifi_password) > 0 &&
        value[0] != '\0')
        fwl_strcpy(out->wifi_password, sizeof out->wifi_password, value);
    if (fwl_form_field(body, "mqtt_url", value, sizeof out->mqtt_url) > 0 && value[0] != '\0')
        fwl_strcpy(out->mqtt_url, sizeof out->mqtt_url, value);
    return fwl_bundle_check(out, err, err_cap);
}
