/* Unit tests of the agent core (src/agent.c) on the in-memory HAL, with the real fwledger
 * library and the shared protocol vectors (signed manifests lamp-1.1.0 and lamp-1.2.0 of
 * tests/vectors/proto.json, verified at the vectors' `now`). */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fake_hal.h"
#include "fwl_agent.h"
#include "sha256.h"
#include "tests.h"
#include "util.h"

static fake F;
static fwl_bundle B;
static fwl_agent A;
static fwl_agent_settings S;
static uint8_t M110[2048], M120[2048], ROOT[32];
static size_t M110_LEN, M120_LEN;
static uint8_t IMAGE[FWLV_IMAGE_SIZE];
static uint8_t NOTICE[4096];
static uint8_t BODY[FWLV_IMAGE_SIZE + 100];

#define URL "https://127.0.0.1:8443/fw/" FWLV_IMAGE_SHA256_HEX

static void load_vectors(void) {
    size_t i;
    M110_LEN = (size_t)fwl_hex_decode(FWLV_MANIFEST_110_HEX, M110, sizeof M110);
    M120_LEN = (size_t)fwl_hex_decode(FWLV_MANIFEST_120_HEX, M120, sizeof M120);
    (void)fwl_hex_decode(FWLV_ROOT_KEY_HEX, ROOT, sizeof ROOT);
    for (i = 0; i < sizeof IMAGE; i++) IMAGE[i] = (uint8_t)((i * 7 + 3) % 256);
}

/* CBOR head: major type + length. */
static size_t head(uint8_t *out, int major, size_t n) {
    if (n < 24) {
        out[0] = (uint8_t)(major << 5 | (int)n);
        return 1;
    }
    if (n < 256) {
        out[0] = (uint8_t)(major << 5 | 24);
        out[1] = (uint8_t)n;
        return 2;
    }
    out[0] = (uint8_t)(major << 5 | 25);
    out[1] = (uint8_t)(n >> 8);
    out[2] = (uint8_t)n;
    return 3;
}

/* The notice {1: 1, 2: manifest, 3: url} (docs/PROTOCOL.md §12). */
static size_t notice(const uint8_t *manifest, size_t len, const char *url) {
    size_t n = 0, ul = strlen(url);
    NOTICE[n++] = 0xa3;
    NOTICE[n++] = 0x01;
    NOTICE[n++] = 0x01;
    NOTICE[n++] = 0x02;
    n += head(NOTICE + n, 2, len);
    memcpy(NOTICE + n, manifest, len);
    n += len;
    NOTICE[n++] = 0x03;
    n += head(NOTICE + n, 3, ul);
    memcpy(NOTICE + n, url, ul);
    return n + ul;
}

static void serve(const uint8_t *body, size_t len, fake_http_mode mode) {
    F.body = body;
    F.body_len = len;
    F.mode = mode;
}

/* A fresh device (model, hardware, factory version) that booted its factory image. */
static void setup(const char *model, const char *hw, const char *factory) {
    char err[200];
    const char *json = sample_bundle();
    load_vectors();
    fake_init(&F, FWLV_NOW);
    F.factory_version = factory;
    CHECK_EQ_INT(fwl_bundle_parse(&B, json, strlen(json), err, sizeof err), 0);
    fwl_strcpy(B.model, sizeof B.model, model);
    fwl_strcpy(B.hardware, sizeof B.hardware, hw);
    fwl_agent_settings_default(&S);
    S.self_check_marker = true;
    fake_power_on(&F);
    CHECK_EQ_INT(fwl_agent_init(&A, &fake_hal, &F, &B, &S), FWL_AGENT_OK);
    CHECK_EQ_INT(fwl_agent_boot(&A), FWL_AGENT_OK);
    serve(IMAGE, sizeof IMAGE, FAKE_HTTP_NORMAL);
}

/* Power cycle: the boot loader's step, a new agent over the same storage, its boot. */
static int reboot(void) {
    fake_power_on(&F);
    CHECK_EQ_INT(fwl_agent_init(&A, &fake_hal, &F, &B, &S), FWL_AGENT_OK);
    return fwl_agent_boot(&A);
}

/* A field of the last status report. */
static const char *status_field(const char *name) {
    static fwl_json_tok toks[32];
    static char out[400];
    fwl_json_doc d;
    int t;
    out[0] = '\0';
    if (fwl_json_parse(&d, F.last_status, strlen(F.last_status), toks, 32, NULL) != 0) return "";
    t = fwl_json_get(&d, 0, name);
    if (fwl_json_type_of(&d, t) == FWL_JSON_STRING) fwl_json_string(&d, t, out, sizeof out, NULL);
    else if (t >= 0) snprintf(out, sizeof out, "%.*s", (int)(d.toks[t].end - d.toks[t].start),
                              d.text + d.toks[t].start);
    return out;
}

static bool processed(const uint8_t *manifest, size_t len) {
    uint8_t id[32];
    size_t i;
    fwl_sha256_digest(manifest, len, id);
    for (i = 0; i < A.rec.processed_count; i++)
        if (memcmp(A.rec.processed[i], id, 32) == 0) return true;
    return false;
}

/* The notice was refused with `check`; the device still runs 1.0.0 from slot A. */
static void check_refused(const char *check, const char *version) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s: ", check);
    CHECK_STR(status_field("state"), "failed");
    CHECK_PREFIX(status_field("reason"), prefix);
    CHECK_STR(status_field("version"), version);
    CHECK_EQ_INT(A.rec.report_state, FWL_STATE_FAILED);
    CHECK_EQ_INT(F.active, FWL_SLOT_A);
    CHECK_EQ_INT(F.pending, -1);
    CHECK(!A.rec.slots[FWL_SLOT_B].present);
    CHECK_EQ_INT(A.rec.pending, -1);
}

/* ---- install, reboot, confirm ---------------------------------------------------------------- */

void test_agent_install(void) {
    size_t n;
    uint8_t id[32];
    char sha[65];
    int statuses;
    setup("lamp", "rev-b", "1.0.0");
    CHECK_STR(status_field("state"), ""); /* nothing published yet */
    CHECK(A.rec.slots[FWL_SLOT_A].present);
    CHECK_STR(A.rec.slots[FWL_SLOT_A].image.version, "1.0.0");
    CHECK(fake_value(&F, FWL_KEY_RECORD) != NULL);

    n = notice(M110, M110_LEN, URL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_RESTART);
    CHECK_STR(status_field("state"), "installing");
    CHECK_STR(status_field("release"), "1.1.0");
    CHECK_EQ_INT(A.rec.pending, FWL_SLOT_B);
    CHECK(!A.rec.download);
    CHECK_STR(A.rec.slots[FWL_SLOT_B].image.version, "1.1.0");
    CHECK_EQ_INT(F.pending, FWL_SLOT_B);
    CHECK_EQ_INT(F.slot_len[1], sizeof IMAGE);
    CHECK(memcmp(F.slot[1], IMAGE, sizeof IMAGE) == 0);
    CHECK_EQ_INT(F.requests, 1);
    CHECK(F.offsets[0] == 0);
    /* The stored notice lets an interrupted download resume after a reset. */
    CHECK(fake_value(&F, FWL_KEY_NOTICE) != NULL);

    CHECK_EQ_INT(reboot(), FWL_AGENT_OK);
    CHECK(!F.trial); /* marked valid */
    CHECK_EQ_INT(F.active, FWL_SLOT_B);
    CHECK(A.rec.confirmed);
    CHECK_EQ_INT(A.rec.active, FWL_SLOT_B);
    CHECK_EQ_INT(A.rec.highest_security_version, 1);
    CHECK_EQ_INT(A.rec.keygen_count, 1);
    CHECK(memcmp(A.rec.keygens[0].key, ROOT, 32) == 0 && A.rec.keygens[0].generation == 1);
    CHECK(processed(M110, M110_LEN));
    CHECK_EQ_INT(A.rec.report_state, FWL_STATE_CONFIRMED);
    {
        char json[1024];
        CHECK(fwl_agent_status_json(&A, json, sizeof json, -1) > 0);
        fwl_strcpy(F.last_status, sizeof F.last_status, json);
    }
    CHECK_STR(status_field("state"), "confirmed");
    CHECK_STR(status_field("version"), "1.1.0");
    CHECK_STR(status_field("security_version"), "1");
    CHECK_STR(status_field("sha256"), FWLV_IMAGE_SHA256_HEX);

    /* The retained notice again (every reconnect): ignored, nothing downloaded. */
    statuses = F.statuses;
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_OK);
    CHECK_EQ_INT(F.requests, 1);
    CHECK_EQ_INT(F.statuses, statuses);

    /* The next release (its prerequisite 1.1.0 is met now) goes to slot A. */
    n = notice(M120, M120_LEN, URL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_RESTART);
    CHECK_EQ_INT(F.pending, FWL_SLOT_A);
    CHECK_EQ_INT(reboot(), FWL_AGENT_OK);
    CHECK_EQ_INT(F.active, FWL_SLOT_A);
    CHECK_STR(A.rec.slots[FWL_SLOT_A].image.version, "1.2.0");
    CHECK_EQ_INT(A.rec.highest_security_version, 2);
    fwl_sha256_digest(M120, M120_LEN, id);
    fwl_hex_encode(id, 32, sha);
    CHECK(strstr(fake_value(&F, FWL_KEY_RECORD), sha) != NULL);
    /* A plain power cycle keeps everything. */
    CHECK_EQ_INT(reboot(), FWL_AGENT_OK);
    CHECK_EQ_INT(F.active, FWL_SLOT_A);
    CHECK_EQ_INT(A.rec.report_state, FWL_STATE_CONFIRMED);
}

/* ---- refusals before any download ------------------------------------------------------------ */

static void refuse_case(const char *model, const char *hw, const char *factory,
                        const uint8_t *manifest, size_t len, const char *url, const char *check) {
    size_t n;
    setup(model, hw, factory);
    n = notice(manifest, len, url);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_OK);
    check_refused(check, factory);
    CHECK_EQ_INT(F.requests, 0);
}

void test_agent_refuse(void) {
    static uint8_t bad[4096];
    size_t i, n;
    int statuses;

    /* Every negative manifest vector, as a compromised gateway's notice. */
    for (i = 0; i < FWLV_NEGATIVE_COUNT; i++) {
        const fwlv_negative_t *v = &fwlv_negative[i];
        long len = fwl_hex_decode(v->input, bad, sizeof bad);
        setup("lamp", "rev-b", "1.0.0");
        CHECK(len > 0);
        if (v->min_key_generation > 0) { /* the device already accepted a newer release key */
            memcpy(A.rec.keygens[0].key, ROOT, 32);
            A.rec.keygens[0].generation = v->min_key_generation;
            A.rec.keygen_count = 1;
        }
        n = notice(bad, (size_t)len, URL);
        CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_OK);
        if (strncmp(status_field("reason"), v->check, strlen(v->check)) != 0)
            fprintf(stderr, "vector %s: reason %s\n", v->name, status_field("reason"));
        check_refused(v->check, "1.0.0");
        CHECK_EQ_INT(F.requests, 0);
        CHECK(processed(bad, (size_t)len));
        /* Refused once, then ignored. */
        statuses = F.statuses;
        CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_OK);
        CHECK_EQ_INT(F.statuses, statuses);
    }

    /* Not a notice at all; too large; empty (a cleared notice: nothing to do). */
    setup("lamp", "rev-b", "1.0.0");
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, (const uint8_t *)"hello", 5, false), FWL_AGENT_OK);
    check_refused("notice-format", "1.0.0");
    n = notice(M110, M110_LEN, URL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n - 3, false), FWL_AGENT_OK);
    check_refused("notice-format", "1.0.0");
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, true), FWL_AGENT_OK);
    check_refused("notice-format", "1.0.0");
    CHECK_PREFIX(status_field("reason"), "notice-format: the notice is larger than");
    statuses = F.statuses;
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, 0, false), FWL_AGENT_OK);
    CHECK_EQ_INT(F.statuses, statuses);

    /* The update policy (docs/PROTOCOL.md §7). */
    refuse_case("fan", "rev-b", "1.0.0", M110, M110_LEN, URL, "model");
    CHECK_STR(status_field("release"), "1.1.0");
    refuse_case("lamp", "rev-a", "1.0.0", M110, M110_LEN, URL, "hardware");
    refuse_case("lamp", "rev-b", "1.1.0", M110, M110_LEN, URL, "version");
    refuse_case("lamp", "rev-b", "1.2.0", M110, M110_LEN, URL, "version");
    refuse_case("lamp", "rev-b", "1.0.0", M120, M120_LEN, URL, "prerequisite");
    refuse_case("lamp", "rev-b", "not-semver", M110, M110_LEN, URL, "manifest-format");

    setup("lamp", "rev-b", "1.0.0");
    A.rec.highest_security_version = 2; /* stored counter above the release's 1 */
    n = notice(M110, M110_LEN, URL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_OK);
    check_refused("security-version", "1.0.0");

    setup("lamp", "rev-b", "1.0.0");
    F.security_floor = 5; /* the hardware counter (eFuse) */
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_OK);
    check_refused("security-version", "1.0.0");

    setup("lamp", "rev-b", "1.1.0");
    F.now = UINT64_C(1702592001); /* after lamp-1.2.0 expires */
    n = notice(M120, M120_LEN, URL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_OK);
    check_refused("manifest-expiry", "1.1.0");

    /* Download URLs: https only (plain http only when the settings allow it). */
    refuse_case("lamp", "rev-b", "1.0.0", M110, M110_LEN, "http://127.0.0.1/fw/x", "notice-url");
    refuse_case("lamp", "rev-b", "1.0.0", M110, M110_LEN, "ftp://127.0.0.1/fw/x", "notice-url");
    setup("lamp", "rev-b", "1.0.0");
    A.settings.allow_plain_http = true;
    n = notice(M110, M110_LEN, "http://127.0.0.1/fw/x");
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_RESTART);

    /* Two trusted vendors: the one whose key does not certify the release says least; the
     * reason comes from the vendor that did (here: a bad signature). */
    setup("lamp", "rev-b", "1.0.0");
    B.vendors[1] = B.vendors[0];
    (void)fwl_hex_decode(FWLV_OTHER_ROOT_KEY_HEX, B.vendors[0].key, 32);
    fwl_strcpy(B.vendors[0].name, sizeof B.vendors[0].name, "globex");
    B.vendor_count = 2;
    memcpy(bad, M110, M110_LEN);
    bad[M110_LEN - 1] ^= 1;
    n = notice(bad, M110_LEN, URL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_OK);
    check_refused("manifest-signature", "1.0.0");
    /* ... and a genuine release installs with the second key. */
    n = notice(M110, M110_LEN, URL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_RESTART);
    CHECK(memcmp(A.rec.slots[FWL_SLOT_B].vendor_key, ROOT, 32) == 0);
}

/* ---- the image ----------------------------------------------------------------------------- */

static int NEXT_STATUS = 200;

static void image_case(const uint8_t *body, size_t len, fake_http_mode mode, const char *check) {
    size_t n;
    setup("lamp", "rev-b", "1.0.0");
    F.status = NEXT_STATUS;
    S.download_requests = 2;
    A.settings.download_requests = 2;
    serve(body, len, mode);
    F.cut_at = 300;
    n = notice(M110, M110_LEN, URL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_OK);
    check_refused(check, "1.0.0");
    CHECK_STR(status_field("release"), "1.1.0");
    CHECK(F.slot_len[1] <= sizeof IMAGE);
}

void test_agent_image(void) {
    size_t n;
    memcpy(BODY, IMAGE, sizeof IMAGE);
    load_vectors();
    memcpy(BODY, IMAGE, sizeof IMAGE);
    BODY[500] ^= 1;
    /* A malicious mirror: other bytes. Refused for good. */
    image_case(BODY, sizeof IMAGE, FAKE_HTTP_NORMAL, "image-sha256");
    CHECK(processed(M110, M110_LEN));
    CHECK(!A.rec.download);
    /* Endless data: announced by Content-Length (refused before writing), or streamed. */
    memcpy(BODY, IMAGE, sizeof IMAGE);
    image_case(BODY, sizeof IMAGE + 100, FAKE_HTTP_NORMAL, "image-size");
    CHECK_EQ_INT(F.slot_len[1], 0);
    image_case(BODY, sizeof IMAGE + 100, FAKE_HTTP_NO_LENGTH, "image-size");
    /* The chunk that would go past the manifest's size is refused whole: the slot never holds
     * more than the manifest states (here 700 of the 1000 bytes, in 700-byte chunks). */
    CHECK_EQ_INT(F.slot_len[1], 700);
    image_case(IMAGE, sizeof IMAGE, FAKE_HTTP_LIE_LENGTH, "image-size");
    CHECK(processed(M110, M110_LEN));
    /* The slot cannot take a bootable image. */
    setup("lamp", "rev-b", "1.0.0");
    F.finalize_invalid = true;
    n = notice(M110, M110_LEN, URL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_OK);
    check_refused("slot-storage", "1.0.0");

    /* Network failures: reported, not marked processed, retried after retry_after. */
    image_case(IMAGE, sizeof IMAGE - 100, FAKE_HTTP_NORMAL, "image-size");
    CHECK_PREFIX(status_field("reason"), "image-size: image truncated: 900 of 1000 bytes");
    CHECK(!processed(M110, M110_LEN));
    CHECK(A.rec.download && A.retry_set);
    CHECK_EQ_INT(F.requests, 3); /* 900 bytes, then two requests that bring nothing */
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, notice(M110, M110_LEN, URL), false),
                 FWL_AGENT_OK);
    CHECK_EQ_INT(F.requests, 3); /* not before retry_after */
    F.ticks += 31000;
    serve(IMAGE, sizeof IMAGE, FAKE_HTTP_NORMAL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, notice(M110, M110_LEN, URL), false),
                 FWL_AGENT_RESTART);
    CHECK_EQ_INT(F.offsets[3], 900); /* resumed where it stopped */

    NEXT_STATUS = 500;
    image_case(IMAGE, sizeof IMAGE, FAKE_HTTP_NORMAL, "download");
    NEXT_STATUS = 200;
    CHECK_STR(status_field("reason"), "download: HTTP status 500");
    CHECK(!processed(M110, M110_LEN));
    image_case(IMAGE, sizeof IMAGE, FAKE_HTTP_FAIL, "download");
    image_case(IMAGE, sizeof IMAGE, FAKE_HTTP_STALL, "download-stalled");
    CHECK_EQ_INT(F.requests, 1); /* a stall is not retried at once */
    CHECK(!processed(M110, M110_LEN));
}

/* ---- resuming ------------------------------------------------------------------------------ */

/* A download that stalled after 300 bytes, then a reset. */
static void interrupted(void) {
    size_t n;
    setup("lamp", "rev-b", "1.0.0");
    serve(IMAGE, sizeof IMAGE, FAKE_HTTP_STALL);
    F.cut_at = 300;
    n = notice(M110, M110_LEN, URL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_OK);
    CHECK(A.rec.download);
    CHECK_EQ_INT(F.slot_len[1], 300);
    CHECK_EQ_INT(reboot(), FWL_AGENT_OK);
    CHECK(A.rec.download);
    F.requests = 0;
}

void test_agent_resume(void) {
    size_t n;
    setup("lamp", "rev-b", "1.0.0");
    /* Cut once: the next request in the same attempt asks for the rest. */
    serve(IMAGE, sizeof IMAGE, FAKE_HTTP_CUT_FIRST);
    F.cut_at = 300;
    n = notice(M110, M110_LEN, URL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_RESTART);
    CHECK_EQ_INT(F.requests, 2);
    CHECK(F.offsets[1] == 300);
    CHECK(memcmp(F.slot[1], IMAGE, sizeof IMAGE) == 0);

    /* After a reset: re-hash the 300 bytes held, ask for the rest. */
    interrupted();
    serve(IMAGE, sizeof IMAGE, FAKE_HTTP_NORMAL);
    n = notice(M110, M110_LEN, URL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_RESTART);
    CHECK_EQ_INT(F.requests, 1);
    CHECK(F.offsets[0] == 300);
    CHECK(memcmp(F.slot[1], IMAGE, sizeof IMAGE) == 0);
    CHECK_EQ_INT(reboot(), FWL_AGENT_OK);
    CHECK_EQ_INT(A.rec.report_state, FWL_STATE_CONFIRMED);

    /* A server that ignores Range: the bytes already held are skipped. */
    interrupted();
    serve(IMAGE, sizeof IMAGE, FAKE_HTTP_IGNORE_RANGE);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_RESTART);
    CHECK(memcmp(F.slot[1], IMAGE, sizeof IMAGE) == 0);

    /* The held bytes were damaged: the digest fails once, the download starts over. */
    interrupted();
    F.slot[1][10] ^= 0xFF;
    serve(IMAGE, sizeof IMAGE, FAKE_HTTP_NORMAL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_RESTART);
    CHECK_EQ_INT(F.requests, 2);
    CHECK(F.offsets[0] == 300 && F.offsets[1] == 0);
    CHECK(memcmp(F.slot[1], IMAGE, sizeof IMAGE) == 0);

    /* A server answering another range than asked. */
    interrupted();
    serve(IMAGE, sizeof IMAGE, FAKE_HTTP_WRONG_RANGE);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_OK);
    CHECK_STR(status_field("reason"), "download: the server answered another range");

    /* The serve loop resumes a download interrupted by a reset on the first connect, from the
     * stored notice (no notice needed from the gateway). */
    interrupted();
    serve(IMAGE, sizeof IMAGE, FAKE_HTTP_NORMAL);
    fake_event(&F, FWL_MQTT_CONNECTED, NULL, NULL, 0);
    F.stop_at_poll = 100; /* bounded even if it fails */
    CHECK_EQ_INT(fwl_agent_serve(&A, &F.stop), FWL_AGENT_RESTART);
    CHECK_EQ_INT(F.requests, 1);
    CHECK(F.offsets[0] == 300);
    CHECK_EQ_INT(F.pending, FWL_SLOT_B);
    CHECK_EQ_INT(F.disconnects, 1);
}

/* ---- self-check, rollback, boot attempts -------------------------------------------------- */

static void installed(void) {
    size_t n;
    setup("lamp", "rev-b", "1.0.0");
    n = notice(M110, M110_LEN, URL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_RESTART);
    CHECK_EQ_INT(F.pending, FWL_SLOT_B);
}

static void check_rolled_back(const char *prefix) {
    CHECK_EQ_INT(F.active, FWL_SLOT_A);
    CHECK(!F.trial);
    CHECK_EQ_INT(A.rec.report_state, FWL_STATE_ROLLED_BACK);
    CHECK_PREFIX(A.rec.report_reason, prefix);
    CHECK_STR(A.rec.report_release, "1.1.0");
    CHECK(!A.rec.slots[FWL_SLOT_B].present);
    CHECK(A.rec.confirmed);
    CHECK_EQ_INT(A.rec.highest_security_version, 0);
    CHECK(processed(M110, M110_LEN));
    /* The old image boots and says so; the same release is not taken again. */
    CHECK_EQ_INT(reboot(), FWL_AGENT_OK);
    CHECK_EQ_INT(F.active, FWL_SLOT_A);
    CHECK_EQ_INT(A.rec.report_state, FWL_STATE_ROLLED_BACK);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, notice(M110, M110_LEN, URL), false),
                 FWL_AGENT_OK);
    CHECK_EQ_INT(F.pending, -1);
}

void test_agent_rollback(void) {
    static const char marker[] = FWL_SELF_CHECK_FAIL_MARKER;

    /* The application's health check fails. */
    installed();
    F.self_check_fails = true;
    CHECK_EQ_INT(reboot(), FWL_AGENT_RESTART);
    CHECK_EQ_INT(F.restarts, 0); /* the caller restarts */
    F.self_check_fails = false;
    check_rolled_back("self-check: the sensors do not answer");

    /* The image carries the self-check failure marker (here written over the installed image,
     * across the 4 KiB read boundary would need a larger image: the vector's is 1000 bytes). */
    installed();
    memcpy(F.slot[1] + 400, marker, sizeof marker - 1);
    CHECK_EQ_INT(reboot(), FWL_AGENT_RESTART);
    check_rolled_back("self-check: the image reports a failed self-check");

    /* What is installed is not what was verified (TOCTOU). */
    installed();
    F.slot[1][999] ^= 1;
    CHECK_EQ_INT(reboot(), FWL_AGENT_RESTART);
    check_rolled_back("self-check: slot b does not match the installed manifest");

    /* Boot attempts: the new image never gets to confirm. */
    installed();
    S.max_boot_attempts = 2;
    fake_power_on(&F); /* boot 1: crashed before the agent ran */
    fake_power_on(&F); /* boot 2: likewise */
    CHECK_EQ_INT(reboot(), FWL_AGENT_RESTART); /* boot 3 */
    check_rolled_back("boot-attempts: not confirmed after 2 boots");
    S.max_boot_attempts = 3;

    /* The boot loader did not start the pending image at all. */
    installed();
    F.loader_ignores_pending = true;
    CHECK_EQ_INT(reboot(), FWL_AGENT_OK);
    CHECK_PREFIX(A.rec.report_reason, "boot-attempts: the boot loader did not start");
    F.loader_ignores_pending = false;
    check_rolled_back("boot-attempts: the boot loader did not start the new image in slot b");

    /* ESP-IDF: the trial image reset without confirming, the boot loader went back by itself. */
    installed();
    {
        /* The agent had switched (record: slot B unconfirmed), then the reset. */
        char json[FWL_RECORD_MAX];
        long len;
        A.rec.pending = -1;
        A.rec.active = FWL_SLOT_B;
        A.rec.confirmed = false;
        len = fwl_record_write(&A.rec, json, sizeof json);
        CHECK(len > 0);
        fake_hal.state_store(&F, FWL_KEY_RECORD, (const uint8_t *)json, (size_t)len);
    }
    F.pending = -1;
    CHECK_EQ_INT(reboot(), FWL_AGENT_OK);
    check_rolled_back("boot-attempts: the new image in slot b did not confirm");

    /* The running image is damaged and the other slot is below the security floor: refuse to
     * run rather than downgrade. */
    installed();
    CHECK_EQ_INT(reboot(), FWL_AGENT_OK);
    F.slot[1][0] ^= 1;
    CHECK_EQ_INT(reboot(), FWL_AGENT_ERR_NO_BOOTABLE);
    /* Damaged with a usable fallback: boot the other slot (as a trial). */
    F.slot[1][0] ^= 1;
    CHECK_EQ_INT(reboot(), FWL_AGENT_OK);
    A.rec.highest_security_version = 0;
    A.rec.slots[FWL_SLOT_A].image.security_version = 0;
    F.slot[1][0] ^= 1;
    {
        /* make the record say the floor is 0 so that the factory image may be booted */
        char json[FWL_RECORD_MAX];
        long len = fwl_record_write(&A.rec, json, sizeof json);
        CHECK(len > 0);
        fake_hal.state_store(&F, FWL_KEY_RECORD, (const uint8_t *)json, (size_t)len);
    }
    CHECK_EQ_INT(reboot(), FWL_AGENT_RESTART);
    CHECK_EQ_INT(F.pending, FWL_SLOT_A);
    CHECK_EQ_INT(reboot(), FWL_AGENT_OK);
    CHECK_EQ_INT(F.active, FWL_SLOT_A);
    CHECK_STR(A.rec.slots[FWL_SLOT_A].image.version, "1.0.0");
}

/* ---- power cut at every step of an install ---------------------------------------------------- */

static jmp_buf POWER_CUT;
/* The step the power is cut before (from an uncut run), for the case under test. */
static const char *CUT_STEP = "";

/* What the boot loader starts now is a complete image that matches the agent's record of it. */
static void check_boots_verified(int k) {
    uint8_t digest[32];
    const fwl_slot_record *r = &A.rec.slots[F.active];
    if (!r->present || r->image.size != F.slot_len[F.active]) {
        fprintf(stderr, "power cut before effect %d: slot %d has no matching record\n", k,
                (int)F.active);
        CHECK(false);
        return;
    }
    fwl_sha256_digest(F.slot[F.active], F.slot_len[F.active], digest);
    CHECK(memcmp(digest, r->image.sha256, 32) == 0);
    CHECK(strcmp(r->image.version, "1.0.0") == 0 || strcmp(r->image.version, "1.1.0") == 0);
}

/* Runs the install (notice, reboot, self-check) with the power cut before persistent effect
 * `cut` (-1: never); then powers on and lets the retained notice finish the job. Returns the
 * number of effects of an uncut install. */
static int power_cut_case(int cut, bool bad) {
    volatile int restarts = 0;
    int failed_before = t_failed;
    size_t n;
    int r, effects, round;
    setup("lamp", "rev-b", "1.0.0");
    F.effects = 0;
    F.self_check_fails = bad;
    n = notice(M110, M110_LEN, URL);
    F.power_cut = &POWER_CUT;
    F.cut_at_effect = cut;
    if (setjmp(POWER_CUT) == 0) {
        r = fwl_agent_handle_notice(&A, NOTICE, n, false);
        while (r == FWL_AGENT_RESTART && restarts < 4) {
            restarts++;
            r = reboot();
        }
        CHECK_EQ_INT(r, FWL_AGENT_OK);
    }
    F.cut_at_effect = -1;
    F.power_cut = NULL;
    effects = F.effects;
    /* Power back on (as often as the agent asks for restarts), then the retained notice again
     * on every connect, until the device settles. */
    for (round = 0; round < 6; round++) {
        r = reboot();
        while (r == FWL_AGENT_RESTART) r = reboot();
        CHECK_EQ_INT(r, FWL_AGENT_OK);
        check_boots_verified(cut);
        if (A.rec.confirmed && (A.rec.report_state == FWL_STATE_CONFIRMED ||
                                A.rec.report_state == FWL_STATE_ROLLED_BACK))
            break;
        r = fwl_agent_handle_notice(&A, NOTICE, n, false);
        CHECK(r == FWL_AGENT_OK || r == FWL_AGENT_RESTART);
    }
    if (!bad && strcmp(CUT_STEP, "set_pending") == 0) {
        /* Known gap (reported): the record says "pending" but the power went before the boot
         * loader was told, so the next boot takes it for a boot loader that refused the slot,
         * rolls back and marks the release processed. Safe (a verified image boots), but this
         * device does not retry the release. */
        CHECK_EQ_INT(A.rec.report_state, FWL_STATE_ROLLED_BACK);
        CHECK_PREFIX(A.rec.report_reason, "boot-attempts: the boot loader did not start");
        CHECK_STR(A.rec.slots[F.active].image.version, "1.0.0");
    } else if (bad) {
        CHECK_EQ_INT(A.rec.report_state, FWL_STATE_ROLLED_BACK);
        CHECK_STR(A.rec.slots[F.active].image.version, "1.0.0");
    } else {
        CHECK_EQ_INT(A.rec.report_state, FWL_STATE_CONFIRMED);
        CHECK_STR(A.rec.slots[F.active].image.version, "1.1.0");
        CHECK(F.slot_len[F.active] == sizeof IMAGE &&
              memcmp(F.slot[F.active], IMAGE, sizeof IMAGE) == 0);
    }
    CHECK(!F.trial);
    if (t_failed > failed_before)
        fprintf(stderr, "power cut before effect %d, %s (bad image: %d): %s\n", cut, CUT_STEP,
                bad, A.rec.report_reason);
    return effects;
}

void test_agent_power_cut(void) {
    int bad;
    for (bad = 0; bad <= 1; bad++) {
        int k, total;
        const char *names[FAKE_EFFECTS];
        CUT_STEP = "";
        total = power_cut_case(-1, bad != 0);
        printf("power cut before each of %d persistent steps (%s image):", total,
               bad ? "failing" : "good");
        for (k = 0; k < total && k < FAKE_EFFECTS; k++) {
            names[k] = F.effect_names[k];
            if (k == 0 || strcmp(names[k], names[k - 1]) != 0) printf(" %s", names[k]);
            else if (k + 1 == total || strcmp(F.effect_names[k + 1], names[k]) != 0)
                printf("..");
        }
        printf("\n");
        CHECK(total >= 8 && total < FAKE_EFFECTS);
        for (k = 0; k < total; k++) {
            CUT_STEP = names[k];
            (void)power_cut_case(k, bad != 0);
        }
    }
}

/* ---- storage failures and configuration ------------------------------------------------------ */

void test_agent_storage(void) {
    size_t n;
    fwl_hal broken;
    char *rec;

    /* The record cannot be written during an install. */
    setup("lamp", "rev-b", "1.0.0");
    F.store_fails_after = 1; /* the notice is stored, the record is not */
    n = notice(M110, M110_LEN, URL);
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_ERR_STORAGE);
    CHECK_EQ_INT(F.pending, -1);

    /* The slot cannot be written. */
    setup("lamp", "rev-b", "1.0.0");
    F.slot_write_fails = true;
    CHECK_EQ_INT(fwl_agent_handle_notice(&A, NOTICE, n, false), FWL_AGENT_OK);
    check_refused("slot-storage", "1.0.0");

    /* A damaged record: the agent stops instead of guessing. */
    setup("lamp", "rev-b", "1.0.0");
    rec = (char *)fake_value(&F, FWL_KEY_RECORD);
    rec[5] = 'x';
    CHECK_EQ_INT(reboot(), FWL_AGENT_ERR_STORAGE);

    /* Configuration errors. */
    setup("lamp", "rev-b", "1.0.0");
    broken = fake_hal;
    broken.http_get = NULL;
    CHECK_EQ_INT(fwl_agent_init(&A, &broken, &F, &B, &S), FWL_AGENT_ERR_CONFIG);
    B.vendor_count = 0;
    CHECK_EQ_INT(fwl_agent_init(&A, &fake_hal, &F, &B, &S), FWL_AGENT_ERR_CONFIG);
    CHECK_EQ_INT(fwl_agent_init(&A, &fake_hal, &F, NULL, &S), FWL_AGENT_ERR_CONFIG);
}

/* ---- the MQTT loop ------------------------------------------------------------------------- */

void test_agent_serve(void) {
    size_t n, i, checks = 0;
    setup("lamp", "rev-b", "1.0.0");
    n = notice(M110, M110_LEN, URL);
    fake_event(&F, FWL_MQTT_CONNECTED, NULL, NULL, 0);
    fake_event(&F, FWL_MQTT_MESSAGE, "fwledger/v1/dev/other/notice", NOTICE, n);
    fake_event(&F, FWL_MQTT_MESSAGE, "fwledger/v1/dev/lamp-1/notice", NOTICE, n);
    CHECK_EQ_INT(fwl_agent_serve(&A, &F.stop), FWL_AGENT_RESTART);
    CHECK_STR(F.subscribed, "fwledger/v1/dev/lamp-1/notice");
    CHECK_EQ_INT(F.connects, 1);
    CHECK_EQ_INT(F.disconnects, 1);
    CHECK(F.publish_count >= 4);
    CHECK_STR(F.publishes[0].topic, "fwledger/v1/dev/lamp-1/status");
    CHECK(strstr(F.publishes[0].payload, "\"state\":\"idle\"") != NULL);
    CHECK(strstr(F.publishes[0].payload, "\"version\":\"1.0.0\"") != NULL);
    CHECK_STR(F.publishes[1].topic, "fwledger/v1/dev/lamp-1/check");
    CHECK_EQ_INT(F.publishes[1].len, 0);
    CHECK(strstr(F.publishes[2].payload, "\"state\":\"downloading\"") != NULL);
    CHECK(strstr(F.publishes[2].payload, "\"progress\":0") != NULL);
    CHECK(strstr(F.publishes[F.publish_count - 1].payload, "\"state\":\"installing\"") != NULL);

    /* Stopping; and the periodic `check` requests (self validation). */
    setup("lamp", "rev-b", "1.0.0");
    S.check_interval_s = 1;
    A.settings.check_interval_s = 1;
    fake_event(&F, FWL_MQTT_CONNECTED, NULL, NULL, 0);
    F.stop_at_poll = 40; /* ~4 s of polls */
    CHECK_EQ_INT(fwl_agent_serve(&A, &F.stop), FWL_AGENT_STOPPED);
    CHECK_EQ_INT(F.disconnects, 1);
    for (i = 0; i < F.publish_count; i++)
        if (strcmp(F.publishes[i].topic, "fwledger/v1/dev/lamp-1/check") == 0) checks++;
    CHECK(checks >= 3);

    /* A disconnect stops the publishing until the next CONNACK. */
    setup("lamp", "rev-b", "1.0.0");
    fake_event(&F, FWL_MQTT_CONNECTED, NULL, NULL, 0);
    fake_event(&F, FWL_MQTT_DISCONNECTED, NULL, NULL, 0);
    fake_event(&F, FWL_MQTT_MESSAGE, "fwledger/v1/dev/lamp-1/notice", (const uint8_t *)"x", 1);
    F.stop_at_poll = 5;
    CHECK_EQ_INT(fwl_agent_serve(&A, &F.stop), FWL_AGENT_STOPPED);
    CHECK_EQ_INT(F.publish_count, 2); /* status + check on connect; the refusal stayed local */
    CHECK_STR(status_field("state"), "failed");
}
