/* The agent's persistent record as JSON (readable with any JSON tool):
 *
 * {"format":1,"active":"a","confirmed":true,"pending":null,
 *  "slots":{"a":{"version":"1.0.0","security_version":0,"size":3456,"sha256":"…",
 *                "release":"…","vendor_key":"…","key_generation":1},"b":null},
 *  "highest_security_version":0,"key_generations":[{"key":"…","generation":1}],
 *  "download":{"release":"…","slot":"b"}|null,"processed":["…"],
 *  "report":{"state":"idle","release":"1.1.0","reason":"…"}}
 */
#include <string.h>

#include "fwl_agent.h"
#include "util.h"

#define RECORD_FORMAT 1

static const char *const STATE_NAMES[] = {"idle",      "downloading", "installing", "rebooting",
                                          "confirmed", "failed",      "rolled_back"};

const char *fwl_update_state_name(fwl_update_state s) {
    if ((int)s < 0 || (size_t)s >= sizeof STATE_NAMES / sizeof STATE_NAMES[0]) return "idle";
    return STATE_NAMES[s];
}

static const char *slot_name(fwl_slot s) { return s == FWL_SLOT_A ? "a" : "b"; }

static void write_slot(fwl_jw *w, const fwl_slot_record *s) {
    if (!s->present) {
        fwl_jw_null(w);
        return;
    }
    fwl_jw_object(w);
    fwl_jw_key(w, "version");
    fwl_jw_string(w, s->image.version);
    fwl_jw_key(w, "security_version");
    fwl_jw_u64(w, s->image.security_version);
    fwl_jw_key(w, "size");
    fwl_jw_u64(w, s->image.size);
    fwl_jw_key(w, "sha256");
    fwl_jw_hex(w, s->image.sha256, 32);
    if (s->has_release) {
        fwl_jw_key(w, "release");
        fwl_jw_hex(w, s->release, 32);
    }
    if (s->has_signer) {
        fwl_jw_key(w, "vendor_key");
        fwl_jw_hex(w, s->vendor_key, 32);
        fwl_jw_key(w, "key_generation");
        fwl_jw_u64(w, s->key_generation);
    }
    fwl_jw_object_end(w);
}

long fwl_record_write(const fwl_record *r, char *out, size_t cap) {
    fwl_jw w;
    size_t i;
    fwl_jw_init(&w, out, cap);
    fwl_jw_object(&w);
    fwl_jw_key(&w, "format");
    fwl_jw_u64(&w, RECORD_FORMAT);
    fwl_jw_key(&w, "active");
    fwl_jw_string(&w, slot_name(r->active));
    fwl_jw_key(&w, "confirmed");
    fwl_jw_bool(&w, r->confirmed);
    fwl_jw_key(&w, "pending");
    if (r->pending < 0) fwl_jw_null(&w);
    else fwl_jw_string(&w, slot_name((fwl_slot)r->pending));
    fwl_jw_key(&w, "slots");
    fwl_jw_object(&w);
    fwl_jw_key(&w, "a");
    write_slot(&w, &r->slots[FWL_SLOT_A]);
    fwl_jw_key(&w, "b");
    write_slot(&w, &r->slots[FWL_SLOT_B]);
    fwl_jw_object_end(&w);
    fwl_jw_key(&w, "highest_security_version");
    fwl_jw_u64(&w, r->highest_security_version);
    fwl_jw_key(&w, "key_generations");
    fwl_jw_array(&w);
    for (i = 0; i < r->keygen_count && i < FWL_MAX_VENDORS; i++) {
        fwl_jw_object(&w);
        fwl_jw_key(&w, "key");
        fwl_jw_hex(&w, r->keygens[i].key, 32);
        fwl_jw_key(&w, "generation");
        fwl_jw_u64(&w, r->keygens[i].generation);
        fwl_jw_object_end(&w);
    }
    fwl_jw_array_end(&w);
    fwl_jw_key(&w, "download");
    if (r->download) {
        fwl_jw_object(&w);
        fwl_jw_key(&w, "release");
        fwl_jw_hex(&w, r->download_release, 32);
        fwl_jw_key(&w, "slot");
        fwl_jw_string(&w, slot_name(r->download_slot));
        fwl_jw_object_end(&w);
    } else {
        fwl_jw_null(&w);
    }
    fwl_jw_key(&w, "processed");
    fwl_jw_array(&w);
    for (i = 0; i < r->processed_count && i < FWL_MAX_PROCESSED; i++)
        fwl_jw_hex(&w, r->processed[i], 32);
    fwl_jw_array_end(&w);
    fwl_jw_key(&w, "report");
    fwl_jw_object(&w);
    fwl_jw_key(&w, "state");
    fwl_jw_string(&w, fwl_update_state_name(r->report_state));
    if (r->report_release[0] != '\0') {
        fwl_jw_key(&w, "release");
        fwl_jw_string(&w, r->report_release);
    }
    if (r->report_reason[0] != '\0') {
        fwl_jw_key(&w, "reason");
        fwl_jw_string(&w, r->report_reason);
    }
    fwl_jw_object_end(&w);
    fwl_jw_object_end(&w);
    return fwl_jw_finish(&w);
}

/* ---- parsing ------------------------------------------------------------------------------ */

static int get_hex32(const fwl_json_doc *d, int obj, const char *key, uint8_t out[32]) {
    char hex[65];
    int t = fwl_json_get(d, obj, key);
    if (t < 0 || fwl_json_string(d, t, hex, sizeof hex, NULL) != 0) return -1;
    return fwl_hex_decode(hex, out, 32) == 32 ? 0 : -1;
}

static int get_u64(const fwl_json_doc *d, int obj, const char *key, uint64_t *out) {
    int t = fwl_json_get(d, obj, key);
    return t < 0 ? -1 : fwl_json_u64(d, t, out);
}

static int get_slot_name(const fwl_json_doc *d, int tok, fwl_slot *out) {
    char s[4];
    if (fwl_json_string(d, tok, s, sizeof s, NULL) != 0) return -1;
    if (strcmp(s, "a") == 0) *out = FWL_SLOT_A;
    else if (strcmp(s, "b") == 0) *out = FWL_SLOT_B;
    else return -1;
    return 0;
}

static int parse_slot(const fwl_json_doc *d, int tok, fwl_slot_record *s) {
    int t;
    memset(s, 0, sizeof *s);
    if (tok < 0) return -1;
    if (fwl_json_type_of(d, tok) == FWL_JSON_NULL) return 0;
    if (fwl_json_type_of(d, tok) != FWL_JSON_OBJECT) return -1;
    t = fwl_json_get(d, tok, "version");
    if (t < 0 || fwl_json_string(d, t, s->image.version, sizeof s->image.version, NULL) != 0)
        return -1;
    if (get_u64(d, tok, "security_version", &s->image.security_version) != 0 ||
        get_u64(d, tok, "size", &s->image.size) != 0 ||
        get_hex32(d, tok, "sha256", s->image.sha256) != 0)
        return -1;
    if (fwl_json_get(d, tok, "release") >= 0) {
        if (get_hex32(d, tok, "release", s->release) != 0) return -1;
        s->has_release = true;
    }
    if (fwl_json_get(d, tok, "vendor_key") >= 0) {
        if (get_hex32(d, tok, "vendor_key", s->vendor_key) != 0 ||
            get_u64(d, tok, "key_generation", &s->key_generation) != 0)
            return -1;
        s->has_signer = true;
    }
    s->present = true;
    return 0;
}

int fwl_record_parse(fwl_record *r, const char *json, size_t len, fwl_json_tok *toks,
                     size_t tok_cap) {
    fwl_json_doc d;
    uint64_t format;
    int t, slots, arr, report;
    size_t i;
    bool b;
    char state[24];

    memset(r, 0, sizeof *r);
    r->pending = -1;
    if (fwl_json_parse(&d, json, len, toks, tok_cap, NULL) != FWL_JSON_OK) return -1;
    if (fwl_json_type_of(&d, 0) != FWL_JSON_OBJECT) return -1;
    if (get_u64(&d, 0, "format", &format) != 0 || format != RECORD_FORMAT) return -1;
    if (get_slot_name(&d, fwl_json_get(&d, 0, "active"), &r->active) != 0) return -1;
    if (fwl_json_bool(&d, fwl_json_get(&d, 0, "confirmed"), &b) != 0) return -1;
    r->confirmed = b;
    t = fwl_json_get(&d, 0, "pending");
    if (t < 0) return -1;
    if (fwl_json_type_of(&d, t) != FWL_JSON_NULL) {
        fwl_slot s;
        if (get_slot_name(&d, t, &s) != 0) return -1;
        r->pending = (int)s;
    }
    slots = fwl_json_get(&d, 0, "slots");
    if (parse_slot(&d, fwl_json_get(&d, slots, "a"), &r->slots[FWL_SLOT_A]) != 0 ||
        parse_slot(&d, fwl_json_get(&d, slots, "b"), &r->slots[FWL_SLOT_B]) != 0)
        return -1;
    if (get_u64(&d, 0, "highest_security_version", &r->highest_security_version) != 0) return -1;
    arr = fwl_json_get(&d, 0, "key_generations");
    if (fwl_json_type_of(&d, arr) != FWL_JSON_ARRAY || d.toks[arr].count > FWL_MAX_VENDORS)
        return -1;
    for (i = 0; i < d.toks[arr].count; i++) {
        int e = fwl_json_at(&d, arr, i);
        if (get_hex32(&d, e, "key", r->keygens[i].key) != 0 ||
            get_u64(&d, e, "generation", &r->keygens[i].generation) != 0)
            return -1;
        r->keygen_count++;
    }
    t = fwl_json_get(&d, 0, "download");
    if (t < 0) return -1;
    if (fwl_json_type_of(&d, t) != FWL_JSON_NULL) {
        if (get_hex32(&d, t, "release", r->download_release) != 0 ||
            get_slot_name(&d, fwl_json_get(&d, t, "slot"), &r->download_slot) != 0)
            return -1;
        r->download = true;
    }
    arr = fwl_json_get(&d, 0, "processed");
    if (fwl_json_type_of(&d, arr) != FWL_JSON_ARRAY) return -1;
    for (i = 0; i < d.toks[arr].count && r->processed_count < FWL_MAX_PROCESSED; i++) {
        char hex[65];
        int e = fwl_json_at(&d, arr, i);
        if (fwl_json_string(&d, e, hex, sizeof hex, NULL) != 0 ||
            fwl_hex_decode(hex, r->processed[r->processed_count], 32) != 32)
            return -1;
        r->processed_count++;
    }
    report = fwl_json_get(&d, 0, "report");
    t = fwl_json_get(&d, report, "state");
    if (t < 0 || fwl_json_string(&d, t, state, sizeof state, NULL) != 0) return -1;
    for (i = 0; i < sizeof STATE_NAMES / sizeof STATE_NAMES[0]; i++)
        if (strcmp(state, STATE_NAMES[i]) == 0) break;
    if (i == sizeof STATE_NAMES / sizeof STATE_NAMES[0]) return -1;
    r->report_state = (fwl_update_state)i;
    t = fwl_json_get(&d, report, "release");
    if (t >= 0 && fwl_json_string(&d, t, r->report_release, sizeof r->report_release, NULL) != 0)
        return -1;
    t = fwl_json_get(&d, report, "reason");
    if (t >= 0 && fwl_json_string(&d, t, r->report_reason, sizeof r->report_reason, NULL) != 0)
        return -1;
    return 0;
}
