/* Unit tests of the agent's building blocks: JSON, SHA-256, helpers, bundle, record, form. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fwl_agent.h"
#include "fwl_bundle.h"
#include "fwl_config_form.h"
#include "fwl_json.h"
#include "sha256.h"
#include "tests.h"
#include "util.h"

/* ---- JSON ---------------------------------------------------------------------------------- */

static int parse(const char *text, fwl_json_doc *d, fwl_json_tok *toks, size_t cap) {
    return fwl_json_parse(d, text, strlen(text), toks, cap, NULL);
}

void test_json(void) {
    fwl_json_tok toks[64];
    fwl_json_doc d;
    char s[64];
    uint64_t u = 0;
    bool b = false;
    int t, i;
    static const char *const bad[] = {
        "",          "{",           "{\"a\":}",     "[1,]",       "{\"a\":1,}",  "01",
        "-",         "1.",          "1e",           "tru",        "nul",         "\"a",
        "\"\x01\"",  "\"\\x\"",     "\"\\u12G4\"",  "[1 2]",      "{1:2}",       "{\"a\" 1}",
        "\"\xc3\"",  "\"\xed\xa0\x80\"", "\"\xf5\x80\x80\x80\"", "1 2", "{\"a\":1}}", "[\"\xc0\xaf\"]"};
    const char *doc =
        " {\"s\":\"a\\\"b\\\\c\\/\\n\\u00e9\\ud83d\\ude00\",\"n\":18446744073709551615,"
        "\"big\":18446744073709551616,\"neg\":-1,\"f\":1.5e3,\"t\":true,\"x\":false,"
        "\"z\":null,\"arr\":[1,[2,3],{\"k\":\"v\"}],\"e\\u0073c\":\"found\",\"o\":{}} ";

    CHECK_EQ_INT(parse(doc, &d, toks, 64), FWL_JSON_OK);
    CHECK_EQ_INT(fwl_json_type_of(&d, 0), FWL_JSON_OBJECT);
    t = fwl_json_get(&d, 0, "s");
    CHECK_EQ_INT(fwl_json_string(&d, t, s, sizeof s, NULL), 0);
    CHECK_STR(s, "a\"b\\c/\n\xc3\xa9\xf0\x9f\x98\x80");
    CHECK_EQ_INT(fwl_json_string(&d, t, s, 5, NULL), -1); /* does not fit */
    CHECK_EQ_INT(fwl_json_u64(&d, fwl_json_get(&d, 0, "n"), &u), 0);
    CHECK(u == UINT64_MAX);
    CHECK_EQ_INT(fwl_json_u64(&d, fwl_json_get(&d, 0, "big"), &u), -1);
    CHECK_EQ_INT(fwl_json_u64(&d, fwl_json_get(&d, 0, "neg"), &u), -1);
    CHECK_EQ_INT(fwl_json_u64(&d, fwl_json_get(&d, 0, "f"), &u), -1);
    CHECK_EQ_INT(fwl_json_bool(&d, fwl_json_get(&d, 0, "t"), &b), 0);
    CHECK(b);
    CHECK_EQ_INT(fwl_json_bool(&d, fwl_json_get(&d, 0, "x"), &b), 0);
    CHECK(!b);
    CHECK_EQ_INT(fwl_json_type_of(&d, fwl_json_get(&d, 0, "z")), FWL_JSON_NULL);
    t = fwl_json_get(&d, 0, "arr");
    CHECK_EQ_INT(d.toks[t].count, 3);
    CHECK_EQ_INT(fwl_json_type_of(&d, fwl_json_at(&d, t, 1)), FWL_JSON_ARRAY);
    CHECK_EQ_INT(fwl_json_string(&d, fwl_json_get(&d, fwl_json_at(&d, t, 2), "k"), s, sizeof s,
                                 NULL),
                 0);
    CHECK_STR(s, "v");
    CHECK_EQ_INT(fwl_json_at(&d, t, 3), -1);
    CHECK_EQ_INT(fwl_json_string(&d, fwl_json_get(&d, 0, "esc"), s, sizeof s, NULL), 0);
    CHECK_STR(s, "found");
    CHECK_EQ_INT(fwl_json_get(&d, 0, "missing"), -1);
    CHECK_EQ_INT(fwl_json_get(&d, t, "k"), -1); /* not an object */
    CHECK_EQ_INT(d.toks[fwl_json_get(&d, 0, "o")].count, 0);

    for (i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        int rc = parse(bad[i], &d, toks, 64);
        if (rc == FWL_JSON_OK) fprintf(stderr, "accepted bad JSON #%d: %s\n", i, bad[i]);
        CHECK(rc != FWL_JSON_OK);
    }
    /* Decoding refuses a NUL character and lone surrogates. */
    CHECK_EQ_INT(parse("\"a\\u0000b\"", &d, toks, 64), FWL_JSON_OK);
    CHECK_EQ_INT(fwl_json_string(&d, 0, s, sizeof s, NULL), -1);
    CHECK_EQ_INT(parse("\"\\ud800\"", &d, toks, 64), FWL_JSON_OK);
    CHECK_EQ_INT(fwl_json_string(&d, 0, s, sizeof s, NULL), -1);
    CHECK_EQ_INT(parse("\"\\udc00x\"", &d, toks, 64), FWL_JSON_OK);
    CHECK_EQ_INT(fwl_json_string(&d, 0, s, sizeof s, NULL), -1);
    /* Limits. */
    CHECK_EQ_INT(parse("[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]", &d, toks, 64), FWL_JSON_OK);
    CHECK_EQ_INT(parse("[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]", &d, toks, 64), FWL_JSON_ERR_TOO_DEEP);
    CHECK_EQ_INT(parse("[1,2,3,4]", &d, toks, 4), FWL_JSON_ERR_TOO_MANY);
    CHECK_EQ_INT(parse("[1,2,3,4]", &d, toks, 5), FWL_JSON_OK);

    /* Writer: escapes, nesting, overflow. */
    {
        char out[256], small[8];
        fwl_jw w;
        static const uint8_t bytes[3] = {0x00, 0xab, 0xff};
        fwl_jw_init(&w, out, sizeof out);
        fwl_jw_object(&w);
        fwl_jw_key(&w, "a\"");
        fwl_jw_string(&w, "x\n\x01\\");
        fwl_jw_key(&w, "l");
        fwl_jw_array(&w);
        fwl_jw_u64(&w, 0);
        fwl_jw_u64(&w, UINT64_MAX);
        fwl_jw_bool(&w, true);
        fwl_jw_null(&w);
        fwl_jw_hex(&w, bytes, 3);
        fwl_jw_object(&w);
        fwl_jw_object_end(&w);
        fwl_jw_array_end(&w);
        fwl_jw_object_end(&w);
        CHECK(fwl_jw_finish(&w) > 0);
        CHECK_STR(out, "{\"a\\\"\":\"x\\n\\u0001\\\\\",\"l\":[0,18446744073709551615,true,null,"
                       "\"00abff\",{}]}");
        CHECK_EQ_INT(parse(out, &d, toks, 64), FWL_JSON_OK);
        fwl_jw_init(&w, small, sizeof small);
        fwl_jw_string(&w, "too long for this");
        CHECK_EQ_INT(fwl_jw_finish(&w), -1);
        CHECK(strlen(small) < sizeof small);
        fwl_jw_init(&w, out, sizeof out);
        fwl_jw_object(&w);
        CHECK_EQ_INT(fwl_jw_finish(&w), -1); /* unbalanced */
    }
}

/* ---- SHA-256 ------------------------------------------------------------------------------- */

static void hex_of(const uint8_t *d, size_t n, char *out) { fwl_hex_encode(d, n, out); }

void test_sha256(void) {
    uint8_t d[32];
    char hex[65];
    static uint8_t million[1000000];
    fwl_sha256 s;
    size_t i;
    fwl_sha256_digest("", 0, d);
    hex_of(d, 32, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    fwl_sha256_digest("abc", 3, d);
    hex_of(d, 32, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    fwl_sha256_digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, d);
    hex_of(d, 32, hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    memset(million, 'a', sizeof million);
    fwl_sha256_init(&s);
    for (i = 0; i < sizeof million; i += 997)
        fwl_sha256_update(&s, million + i, sizeof million - i < 997 ? sizeof million - i : 997);
    fwl_sha256_final(&s, d);
    hex_of(d, 32, hex);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* ---- helpers ------------------------------------------------------------------------------- */

void test_util(void) {
    char host[64], small[4];
    uint16_t port = 0;
    uint8_t bytes[4];
    char hex[9];
    CHECK_EQ_INT(fwl_url_host_port("mqtts://127.0.0.1:8883", host, sizeof host, &port, 1), 0);
    CHECK_STR(host, "127.0.0.1");
    CHECK_EQ_INT(port, 8883);
    CHECK_EQ_INT(fwl_url_host_port("mqtts://gw.local", host, sizeof host, &port, 8883), 0);
    CHECK_STR(host, "gw.local");
    CHECK_EQ_INT(port, 8883);
    CHECK_EQ_INT(fwl_url_host_port("mqtt://[::1]:1883/x", host, sizeof host, &port, 1), 0);
    CHECK_STR(host, "::1");
    CHECK_EQ_INT(port, 1883);
    CHECK_EQ_INT(fwl_url_host_port("https://h:443/fw/abc?x=1", host, sizeof host, &port, 1), 0);
    CHECK_EQ_INT(port, 443);
    CHECK_EQ_INT(fwl_url_host_port("nonsense", host, sizeof host, &port, 1), -1);
    CHECK_EQ_INT(fwl_url_host_port("mqtt://h:0", host, sizeof host, &port, 1), -1);
    CHECK_EQ_INT(fwl_url_host_port("mqtt://h:99999", host, sizeof host, &port, 1), -1);
    CHECK_EQ_INT(fwl_url_host_port("mqtt://h:12a", host, sizeof host, &port, 1), -1);
    CHECK_EQ_INT(fwl_url_host_port("mqtt://u@h:1", host, sizeof host, &port, 1), -1);
    CHECK_EQ_INT(fwl_url_host_port("mqtt://:1", host, sizeof host, &port, 1), -1);
    CHECK_EQ_INT(fwl_url_host_port("mqtt://longname", small, sizeof small, &port, 1), -1);
    CHECK(fwl_url_is_loopback("mqtt://127.0.0.1:1883"));
    CHECK(fwl_url_is_loopback("http://localhost/x"));
    CHECK(fwl_url_is_loopback("mqtt://[::1]:1"));
    CHECK(!fwl_url_is_loopback("mqtt://10.0.0.1:1883"));
    CHECK(!fwl_url_is_loopback("http://127.0.0.1.evil.example/"));
    CHECK_EQ_INT(fwl_hex_decode("00aBff10", bytes, sizeof bytes), 4);
    CHECK(bytes[1] == 0xab && bytes[2] == 0xff);
    fwl_hex_encode(bytes, 4, hex);
    CHECK_STR(hex, "00abff10");
    CHECK_EQ_INT(fwl_hex_decode("abc", bytes, sizeof bytes), -1);
    CHECK_EQ_INT(fwl_hex_decode("zz", bytes, sizeof bytes), -1);
    CHECK_EQ_INT(fwl_hex_decode("0011223344", bytes, sizeof bytes), -1);
    CHECK_EQ_INT(fwl_strcpy(small, sizeof small, "abc"), 0);
    CHECK_EQ_INT(fwl_strcpy(small, sizeof small, "abcd"), -1);
    CHECK_STR(small, "abc");
}

/* ---- bundle -------------------------------------------------------------------------------- */

const char *sample_bundle(void) {
    return "{\n"
           "  \"format\": 1,\n"
           "  \"device_id\": \"lamp-1\",\n"
           "  \"mac\": \"02:00:00:00:00:01\",\n"
           "  \"model\": \"lamp\",\n"
           "  \"hardware\": \"rev-b\",\n"
           "  \"mqtt_url\": \"mqtts://127.0.0.1:8883\",\n"
           "  \"http_url\": \"https://127.0.0.1:8443\",\n"
           "  \"sntp\": \"127.0.0.1:1123\",\n"
           "  \"ca_cert_pem\": \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\",\n"
           "  \"device_cert_pem\": \"-----BEGIN CERTIFICATE-----\\nMIIC\\n-----END CERTIFICATE-----\\n\",\n"
           "  \"device_key_pem\": \"-----BEGIN PRIVATE KEY-----\\nMIGH\\n-----END PRIVATE KEY-----\\n\",\n"
           "  \"vendors\": [{\"name\": \"acme\", \"key\": \"" FWLV_ROOT_KEY_HEX "\"}]\n"
           "}\n";
}

static int parse_variant(const char *from, const char *to, char *err, size_t cap) {
    static char text[4096];
    static fwl_bundle b;
    const char *base = sample_bundle(), *at = strstr(base, from);
    if (at == NULL) return 99;
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    return fwl_bundle_parse(&b, text, strlen(text), err, cap);
}

void test_bundle(void) {
    static fwl_bundle b, b2;
    static char out[FWL_BUNDLE_MAX];
    char err[200];
    long n;
    const char *s = sample_bundle();
    CHECK_EQ_INT(fwl_bundle_parse(&b, s, strlen(s), err, sizeof err), 0);
    CHECK_STR(b.device_id, "lamp-1");
    CHECK_STR(b.model, "lamp");
    CHECK_STR(b.sntp, "127.0.0.1:1123");
    CHECK_PREFIX(b.ca_cert_pem, "-----BEGIN CERTIFICATE-----\nMIIB\n");
    CHECK_EQ_INT(b.vendor_count, 1);
    CHECK_STR(b.wifi_ssid, "");
    n = fwl_bundle_write(&b, out, sizeof out);
    CHECK(n > 0);
    CHECK_EQ_INT(fwl_bundle_parse(&b2, out, (size_t)n, err, sizeof err), 0);
    CHECK(memcmp(&b, &b2, sizeof b) == 0);

    CHECK_EQ_INT(parse_variant("\"format\": 1", "\"format\": 2", err, sizeof err), -1);
    CHECK_STR(err, "provisioning bundle: unknown format");
    CHECK_EQ_INT(parse_variant("  \"model\": \"lamp\",\n", "", err, sizeof err), -1);
    CHECK_STR(err, "provisioning bundle: missing field `model`");
    CHECK_EQ_INT(parse_variant("\"lamp-1\"", "\"lamp/1\"", err, sizeof err), -1);
    CHECK_STR(err, "provisioning bundle: invalid device id");
    CHECK_EQ_INT(parse_variant("\"lamp-1\"", "1", err, sizeof err), -1);
    CHECK_STR(err, "provisioning bundle: `device_id` is not a string");
    CHECK_EQ_INT(parse_variant(FWLV_ROOT_KEY_HEX, "abcd", err, sizeof err), -1);
    CHECK_STR(err, "provisioning bundle: vendor key is not 64 hex characters");
    CHECK_EQ_INT(parse_variant("[{\"name\"", "[{\"x\":1},{\"name\"", err, sizeof err), -1);
    CHECK_EQ_INT(parse_variant("[{\"name\": \"acme\", \"key\": \"" FWLV_ROOT_KEY_HEX "\"}]", "[]",
                               err, sizeof err),
                 -1);
    CHECK_STR(err, "provisioning bundle: no trusted vendor key");
    CHECK_EQ_INT(parse_variant("mqtts://", "http://", err, sizeof err), -1);
    CHECK_EQ_INT(parse_variant("\"sntp\": \"127.0.0.1:1123\"", "\"sntp\": null", err, sizeof err), 0);
    CHECK_EQ_INT(
        parse_variant("[{\"name\": \"acme\", \"key\": \"" FWLV_ROOT_KEY_HEX "\"}]",
                      "[{\"name\":\"a\",\"key\":\"" FWLV_ROOT_KEY_HEX "\"},{\"name\":\"b\",\"key\":\"" FWLV_ROOT_KEY_HEX
                      "\"},{\"name\":\"c\",\"key\":\"" FWLV_ROOT_KEY_HEX "\"},{\"name\":\"d\",\"key\":\"" FWLV_ROOT_KEY_HEX
                      "\"},{\"name\":\"e\",\"key\":\"" FWLV_ROOT_KEY_HEX "\"}]",
                      err, sizeof err),
        -1);
    CHECK_STR(err, "provisioning bundle: more than 4 trusted vendors");
    CHECK_EQ_INT(fwl_bundle_parse(&b, "[]", 2, err, sizeof err), -1);
    CHECK_EQ_INT(fwl_bundle_parse(&b, "{", 1, err, sizeof err), -1);
    CHECK_PREFIX(err, "provisioning bundle: not valid JSON");
    CHECK(fwl_device_id_valid("a.b_c-D9"));
    CHECK(!fwl_device_id_valid(""));
    CHECK(!fwl_device_id_valid("a b"));
    CHECK(!fwl_device_id_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 65 */
    CHECK(fwl_device_id_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));  /* 64 */
}

/* ---- record -------------------------------------------------------------------------------- */

void test_record(void) {
    static fwl_record r, back;
    static char text[FWL_RECORD_MAX];
    static fwl_json_tok toks[FWL_AGENT_TOKENS];
    long n;
    size_t i;
    memset(&r, 0, sizeof r);
    /* The fullest record: both slots with everything, every bounded list full. */
    r.active = FWL_SLOT_B;
    r.confirmed = false;
    r.pending = FWL_SLOT_A;
    for (i = 0; i < 2; i++) {
        fwl_slot_record *s = &r.slots[i];
        s->present = true;
        memset(s->image.version, '9', sizeof s->image.version - 1);
        s->image.security_version = UINT64_MAX;
        s->image.size = UINT64_MAX - i;
        memset(s->image.sha256, 0xab, 32);
        s->has_release = true;
        memset(s->release, 0xcd, 32);
        s->has_signer = true;
        memset(s->vendor_key, 0xef, 32);
        s->key_generation = 7;
    }
    r.highest_security_version = 42;
    for (i = 0; i < FWL_MAX_VENDORS; i++) {
        memset(r.keygens[i].key, (int)i, 32);
        r.keygens[i].generation = i + 1;
    }
    r.keygen_count = FWL_MAX_VENDORS;
    r.download = true;
    memset(r.download_release, 0x11, 32);
    r.download_slot = FWL_SLOT_A;
    for (i = 0; i < FWL_MAX_PROCESSED; i++) memset(r.processed[i], (int)(i + 1), 32);
    r.processed_count = FWL_MAX_PROCESSED;
    r.report_state = FWL_STATE_ROLLED_BACK;
    memset(r.report_release, 'r', sizeof r.report_release - 1);
    memset(r.report_reason, '"', sizeof r.report_reason - 1); /* every byte escaped */
    n = fwl_record_write(&r, text, sizeof text);
    CHECK(n > 0);
    CHECK_EQ_INT(fwl_record_parse(&back, text, (size_t)n, toks, FWL_AGENT_TOKENS), 0);
    CHECK(memcmp(&r, &back, sizeof r) == 0);

    /* The smallest. */
    memset(&r, 0, sizeof r);
    r.pending = -1;
    r.confirmed = true;
    r.slots[0].present = true;
    strcpy(r.slots[0].image.version, "1.0.0");
    n = fwl_record_write(&r, text, sizeof text);
    CHECK(n > 0);
    CHECK_EQ_INT(fwl_record_parse(&back, text, (size_t)n, toks, FWL_AGENT_TOKENS), 0);
    CHECK(memcmp(&r, &back, sizeof r) == 0);
    CHECK(strstr(text, "\"slots\":{\"a\":{\"version\":\"1.0.0\"") != NULL);

    /* Refused: not JSON, wrong format, a bad field, too small a buffer. */
    CHECK_EQ_INT(fwl_record_parse(&back, "{", 1, toks, FWL_AGENT_TOKENS), -1);
    text[8] = '2'; /* {"format":1 → 2 */
    CHECK_EQ_INT(fwl_record_parse(&back, text, (size_t)n, toks, FWL_AGENT_TOKENS), -1);
    CHECK_EQ_INT(fwl_record_write(&r, text, 100), -1);
}

/* ---- configuration form -------------------------------------------------------------------- */

void test_form(void) {
    static char page[16384], scratch[FWL_BUNDLE_MAX + 1], body[8192];
    static fwl_bundle b;
    char v[32], err[200];
    const char *json = sample_bundle();
    size_t i, n = 0;
    CHECK_EQ_INT(fwl_form_field("a=1&b=x+y%21&c=", "b", v, sizeof v), 1);
    CHECK_STR(v, "x y!");
    CHECK_EQ_INT(fwl_form_field("a=1&b=x+y%21&c=", "c", v, sizeof v), 1);
    CHECK_STR(v, "");
    CHECK_EQ_INT(fwl_form_field("ab=1", "a", v, sizeof v), 0);
    CHECK_EQ_INT(fwl_form_field("a=%zz", "a", v, sizeof v), -1);
    CHECK_EQ_INT(fwl_form_field("a=%00", "a", v, sizeof v), -1);
    CHECK_EQ_INT(fwl_form_field("a=%4", "a", v, sizeof v), -1);
    CHECK_EQ_INT(fwl_form_field("a=0123456789", "a", v, 8), -1);

    fwl_config_page(page, sizeof page, "<lamp>", "bad \"bundle\"", true);
    CHECK(strstr(page, "&lt;lamp&gt;") != NULL && strstr(page, "<lamp>") == NULL);
    CHECK(strstr(page, "bad &quot;bundle&quot;") != NULL);
    CHECK(strstr(page, "</html>") != NULL);
    fwl_config_page(page, 64, "x", NULL, false);
    CHECK(strlen(page) < 64);

    /* Encode the bundle as a form. */
    n = (size_t)snprintf(body, sizeof body, "wifi_ssid=home+net&wifi_password=p%%26w&bundle=");
    for (i = 0; json[i] != '\0' && n + 4 < sizeof body; i++) {
        unsigned char c = (unsigned char)json[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            body[n++] = (char)c;
        else
            n += (size_t)sprintf(body + n, "%%%02X", c);
    }
    body[n] = '\0';
    CHECK_EQ_INT(fwl_config_apply(body, NULL, 0, &b, scratch, sizeof scratch, err, sizeof err), 0);
    CHECK_STR(b.wifi_ssid, "home net");
    CHECK_STR(b.wifi_password, "p&w");
    CHECK_STR(b.mqtt_url, "mqtts://127.0.0.1:8883");
    /* No bundle in the form: the stored one, with overrides. */
    CHECK_EQ_INT(fwl_config_apply("bundle=&mqtt_url=mqtts%3A%2F%2Fgw%3A8883", json, strlen(json),
                                  &b, scratch, sizeof scratch, err, sizeof err),
                 0);
    CHECK_STR(b.mqtt_url, "mqtts://gw:8883");
    CHECK_EQ_INT(fwl_config_apply("mqtt_url=ftp%3A%2F%2Fx", json, strlen(json), &b, scratch,
                                  sizeof scratch, err, sizeof err),
                 -1);
    CHECK_PREFIX(err, "provisioning bundle: mqtt_url");
    CHECK_EQ_INT(fwl_config_apply("wifi_ssid=x", NULL, 0, &b, scratch, sizeof scratch, err,
                                  sizeof err),
                 -1);
    CHECK_STR(err, "Upload the provisioning bundle first.");
    CHECK_EQ_INT(fwl_config_apply("bundle=%7B", NULL, 0, &b, scratch, sizeof scratch, err,
                                  sizeof err),
                 -1);
}
