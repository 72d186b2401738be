/*
 * The agent core: boot (reconcile with the boot loader, self-check, confirm or roll back), then
 * serve notices. No IO of its own (everything goes through fwl_hal) and no heap (every buffer is
 * in fwl_agent); the protocol decisions come from the fwledger C API (fwl_notice_verify,
 * fwl_policy_decide, fwl_image_verifier_*). The same state machine as core/device/src/agent.rs.
 */
#include "fwl_agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sha256.h"
#include "util.h"

#define POLL_MS 100u
#define TOPIC_PREFIX "fwledger/v1/dev/"

/* ---- small helpers ------------------------------------------------------------------------ */

static void logf_(fwl_agent *a, int level, const char *fmt, ...) {
    char line[320];
    va_list ap;
    if (a->hal->log == NULL) return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    a->hal->log(a->ctx, level, line);
}

static uint64_t ticks(fwl_agent *a) { return a->hal->ticks_ms(a->ctx); }

static bool stopping(const fwl_agent *a) { return a->stop != NULL && *a->stop != 0; }

static void fail_set(fwl_failure *f, fwl_failure_kind kind, const char *check, const char *fmt,
                     ...) {
    va_list ap;
    f->kind = kind;
    f->check = check;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
}

/* The library's message about the last failed call, or its status text (no_std builds keep no
 * message). The "fwl_function: " prefix is dropped: the check name already says where. */
static void lib_message(int status, char *out, size_t cap) {
    char msg[256];
    const char *text;
    size_t n = fwl_last_error(msg, sizeof msg);
    if (n == 0) {
        fwl_strcpy(out, cap, fwl_status_str(status));
        return;
    }
    text = msg;
    if (strncmp(msg, "fwl_", 4) == 0) {
        const char *colon = strstr(msg, ": ");
        if (colon != NULL) text = colon + 2;
    }
    fwl_strcpy(out, cap, text);
}

static void lib_fail(fwl_failure *f, fwl_failure_kind kind, int status) {
    char msg[sizeof f->message];
    lib_message(status, msg, sizeof msg);
    fail_set(f, kind, fwl_status_check(status), "%s", msg);
}

static const char *slot_label(fwl_slot s) { return s == FWL_SLOT_A ? "a" : "b"; }

/* ---- the record ----------------------------------------------------------------------------- */

static bool is_processed(const fwl_agent *a, const uint8_t id[32]) {
    size_t i;
    for (i = 0; i < a->rec.processed_count; i++)
        if (memcmp(a->rec.processed[i], id, 32) == 0) return true;
    return false;
}

static void mark_processed(fwl_agent *a, const uint8_t id[32]) {
    fwl_record *r = &a->rec;
    if (is_processed(a, id)) return;
    if (r->processed_count >= FWL_MAX_PROCESSED) {
        memmove(r->processed[0], r->processed[1], (FWL_MAX_PROCESSED - 1) * 32);
        r->processed_count = FWL_MAX_PROCESSED - 1;
    }
    memcpy(r->processed[r->processed_count++], id, 32);
}

static uint64_t min_key_generation(const fwl_agent *a, const uint8_t key[32]) {
    size_t i;
    for (i = 0; i < a->rec.keygen_count; i++)
        if (memcmp(a->rec.keygens[i].key, key, 32) == 0) return a->rec.keygens[i].generation;
    return 0;
}

static void raise_key_generation(fwl_agent *a, const uint8_t key[32], uint64_t generation) {
    fwl_record *r = &a->rec;
    size_t i;
    for (i = 0; i < r->keygen_count; i++) {
        if (memcmp(r->keygens[i].key, key, 32) == 0) {
            if (generation > r->keygens[i].generation) r->keygens[i].generation = generation;
            return;
        }
    }
    if (r->keygen_count < FWL_MAX_VENDORS) {
        memcpy(r->keygens[r->keygen_count].key, key, 32);
        r->keygens[r->keygen_count].generation = generation;
        r->keygen_count++;
    }
}

/* The security-version floor: the stored counter and the hardware one (eFuse). */
static uint64_t security_floor(fwl_agent *a) {
    uint64_t hw = 0;
    if (a->hal->security_floor != NULL && a->hal->security_floor(a->ctx, &hw) == FWL_HAL_OK &&
        hw > a->rec.highest_security_version)
        return hw;
    return a->rec.highest_security_version;
}

static void report(fwl_agent *a, fwl_update_state state, const char *release, const char *reason) {
    a->rec.report_state = state;
    fwl_strcpy(a->rec.report_release, sizeof a->rec.report_release, release ? release : "");
    fwl_strcpy(a->rec.report_reason, sizeof a->rec.report_reason, reason ? reason : "");
}

static int store(fwl_agent *a) {
    long n = fwl_record_write(&a->rec, a->text, sizeof a->text);
    if (n < 0) {
        logf_(a, FWL_LOG_ERROR, "record does not fit %u bytes", (unsigned)sizeof a->text);
        return -1;
    }
    if (a->hal->state_store(a->ctx, FWL_KEY_RECORD, (const uint8_t *)a->text, (size_t)n) !=
        FWL_HAL_OK) {
        logf_(a, FWL_LOG_ERROR, "cannot store the record");
        return -1;
    }
    return 0;
}

/* ---- status reports ------------------------------------------------------------------------- */

long fwl_agent_status_json(const fwl_agent *a, char *out, size_t cap, int64_t progress) {
    const fwl_slot_record *run = &a->rec.slots[a->boot.running];
    fwl_jw w;
    uint64_t sv = a->rec.highest_security_version;
    fwl_jw_init(&w, out, cap);
    fwl_jw_object(&w);
    fwl_jw_key(&w, "state");
    fwl_jw_string(&w, fwl_update_state_name(a->rec.report_state));
    fwl_jw_key(&w, "version");
    fwl_jw_string(&w, run->present ? run->image.version : "");
    fwl_jw_key(&w, "security_version");
    fwl_jw_u64(&w, sv);
    if (a->rec.report_release[0] != '\0') {
        fwl_jw_key(&w, "release");
        fwl_jw_string(&w, a->rec.report_release);
    }
    if (a->rec.report_reason[0] != '\0') {
        fwl_jw_key(&w, "reason");
        fwl_jw_string(&w, a->rec.report_reason);
    }
    if (run->present && run->image.size > 0) {
        fwl_jw_key(&w, "sha256");
        fwl_jw_hex(&w, run->image.sha256, 32);
    }
    if (progress >= 0) {
        fwl_jw_key(&w, "progress");
        fwl_jw_u64(&w, (uint64_t)progress);
    }
    fwl_jw_object_end(&w);
    return fwl_jw_finish(&w);
}

static void publish_status(fwl_agent *a, int64_t progress) {
    long n = fwl_agent_status_json(a, a->status, sizeof a->status, progress);
    if (n < 0) return;
    if (a->hal->observe != NULL) a->hal->observe(a->ctx, a->status, (size_t)n);
    /* A lost report is sent again on the next connect (the record keeps it). */
    if (a->session && a->connected)
        (void)a->hal->mqtt_publish(a->ctx, a->topic_status, a->status, (size_t)n, 1, false);
}

/* ---- images in slots ------------------------------------------------------------------------ */

static const uint8_t *find(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m) {
    size_t i;
    if (m == 0 || n < m) return NULL;
    for (i = 0; i + m <= n; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0) return hay + i;
    return NULL;
}

/* Reads `slot` back: it must hold exactly `image` (size and SHA-256, through the library's
 * verifier) and, with `marker`, must not contain the self-check failure marker. A size of 0 is
 * an image the boot loader vouches for (ESP32 factory app): nothing to compare. */
static int check_image(fwl_agent *a, fwl_slot slot, const fwl_image_info *image, bool marker,
                       char *why, size_t cap) {
    static const char mark[] = FWL_SELF_CHECK_FAIL_MARKER;
    const size_t mlen = sizeof mark - 1;
    uint8_t carry[2 * (sizeof mark - 1)];
    size_t carry_len = 0;
    uint64_t offset = 0;
    int s;
    if (image->size == 0) return 0;
    s = fwl_image_verifier_init_raw(&a->verifier, image->size, image->sha256, 32);
    if (s != FWL_OK) {
        snprintf(why, cap, "cannot check slot %s: %s", slot_label(slot), fwl_status_str(s));
        return -1;
    }
    while (offset < image->size) {
        size_t want = sizeof a->chunk, got = 0;
        if (image->size - offset < want) want = (size_t)(image->size - offset);
        if (a->hal->slot_read(a->ctx, slot, offset, a->chunk, want, &got) != FWL_HAL_OK) {
            snprintf(why, cap, "cannot read slot %s", slot_label(slot));
            (void)fwl_image_verifier_finish(&a->verifier);
            return -1;
        }
        if (got == 0 || got > want) {
            snprintf(why, cap, "slot %s holds %llu bytes, the manifest states %llu",
                     slot_label(slot), (unsigned long long)offset,
                     (unsigned long long)image->size);
            (void)fwl_image_verifier_finish(&a->verifier);
            return -1;
        }
        (void)fwl_image_verifier_update(&a->verifier, a->chunk, got);
        if (marker) {
            /* The marker may straddle two chunks: look at the previous tail + this head too. */
            size_t head = got < mlen - 1 ? got : mlen - 1;
            memcpy(carry + carry_len, a->chunk, head);
            if (find(carry, carry_len + head, (const uint8_t *)mark, mlen) != NULL ||
                find(a->chunk, got, (const uint8_t *)mark, mlen) != NULL) {
                snprintf(why, cap, "the image reports a failed self-check");
                (void)fwl_image_verifier_finish(&a->verifier);
                return -1;
            }
            if (got >= mlen - 1) {
                memcpy(carry, a->chunk + got - (mlen - 1), mlen - 1);
                carry_len = mlen - 1;
            } else {
                size_t total = carry_len + got, drop = total > mlen - 1 ? total - (mlen - 1) : 0;
                memmove(carry, carry + drop, total - drop);
                carry_len = total - drop;
            }
        }
        offset += got;
    }
    s = fwl_image_verifier_finish(&a->verifier);
    if (s != FWL_OK) {
        snprintf(why, cap, "slot %s does not match the installed manifest (%s)",
                 slot_label(slot), fwl_status_str(s));
        return -1;
    }
    return 0;
}

/* ---- boot ----------------------------------------------------------------------------------- */

/* The running image passed its self-check: it is the device's floor from now on. */
static void confirm(fwl_agent *a) {
    fwl_slot_record *s = &a->rec.slots[a->boot.running];
    a->rec.active = a->boot.running;
    a->rec.confirmed = true;
    a->rec.pending = -1;
    if (!s->present) return;
    if (s->image.security_version > a->rec.highest_security_version)
        a->rec.highest_security_version = s->image.security_version;
    if (s->has_signer) raise_key_generation(a, s->vendor_key, s->key_generation);
    if (s->has_release) mark_processed(a, s->release);
    report(a, FWL_STATE_CONFIRMED, s->image.version, NULL);
}

/* Forgets the image in `slot` that never confirmed, and reports the rollback. */
static void forget_failed(fwl_agent *a, fwl_slot slot, const char *reason) {
    fwl_slot_record *s = &a->rec.slots[slot];
    char version[sizeof s->image.version];
    version[0] = '\0';
    if (s->present) {
        fwl_strcpy(version, sizeof version, s->image.version);
        if (s->has_release) mark_processed(a, s->release);
    }
    s->present = false;
    report(a, FWL_STATE_ROLLED_BACK, version, reason);
    logf_(a, FWL_LOG_WARN, "rolled back %s: %s", version, reason);
}

/* The trial image failed: record it, then let the boot loader start the other slot. */
static int roll_back(fwl_agent *a, const char *reason) {
    fwl_slot running = a->boot.running, other = FWL_SLOT_OTHER(running);
    if (!a->rec.slots[other].present) {
        logf_(a, FWL_LOG_ERROR, "cannot roll back (slot %s is empty): %s", slot_label(other),
              reason);
        return FWL_AGENT_ERR_NO_BOOTABLE;
    }
    forget_failed(a, running, reason);
    a->rec.active = other;
    a->rec.confirmed = true;
    a->rec.pending = -1;
    if (store(a) != 0) return FWL_AGENT_ERR_STORAGE;
    if (a->hal->slot_rollback(a->ctx) != FWL_HAL_OK) {
        logf_(a, FWL_LOG_ERROR, "the boot loader refused the rollback");
        return FWL_AGENT_ERR_STORAGE;
    }
    return FWL_AGENT_RESTART;
}

static int self_check(fwl_agent *a, char *why, size_t cap) {
    fwl_slot slot = a->boot.running;
    const fwl_slot_record *s = &a->rec.slots[slot];
    if (!s->present) {
        snprintf(why, cap, "no record of the installed image");
        return -1;
    }
    if (check_image(a, slot, &s->image, a->settings.self_check_marker, why, cap) != 0) return -1;
    if (a->hal->self_check != NULL && a->hal->self_check(a->ctx, slot, why, cap) != FWL_HAL_OK)
        return -1;
    return 0;
}

/* The secure-boot step: the running image must be the one that was verified. If it is not, and
 * the other slot holds a verified image that is not below the floor, boot that one. */
static int verify_running(fwl_agent *a) {
    fwl_slot running = a->boot.running, other = FWL_SLOT_OTHER(running);
    char why[200];
    const fwl_slot_record *o = &a->rec.slots[other];
    if (!a->rec.slots[running].present) {
        snprintf(why, sizeof why, "slot %s has no image record", slot_label(running));
    } else if (check_image(a, running, &a->rec.slots[running].image, false, why, sizeof why) ==
               0) {
        return FWL_AGENT_OK;
    }
    logf_(a, FWL_LOG_ERROR, "the running image is not the verified one: %s", why);
    if (o->present && o->image.size > 0 &&
        o->image.security_version >= a->rec.highest_security_version) {
        char why2[200];
        if (check_image(a, other, &o->image, false, why2, sizeof why2) == 0) {
            a->rec.slots[running].present = false;
            a->rec.pending = (int)other;
            if (store(a) != 0) return FWL_AGENT_ERR_STORAGE;
            if (a->hal->slot_set_pending(a->ctx, other) != FWL_HAL_OK)
                return FWL_AGENT_ERR_NO_BOOTABLE;
            logf_(a, FWL_LOG_WARN, "booting the verified image in slot %s", slot_label(other));
            return FWL_AGENT_RESTART;
        }
    }
    return FWL_AGENT_ERR_NO_BOOTABLE;
}

static int load_record(fwl_agent *a, bool *found) {
    size_t len = 0;
    int rc = a->hal->state_load(a->ctx, FWL_KEY_RECORD, (uint8_t *)a->text, sizeof a->text - 1,
                                &len);
    *found = false;
    if (rc == FWL_HAL_ERR_NOT_FOUND) return 0;
    if (rc != FWL_HAL_OK) {
        logf_(a, FWL_LOG_ERROR, "cannot load the record");
        return -1;
    }
    a->text[len] = '\0';
    if (fwl_record_parse(&a->rec, a->text, len, a->toks, FWL_AGENT_TOKENS) != 0) {
        logf_(a, FWL_LOG_ERROR, "the stored record is not a record");
        return -1;
    }
    *found = true;
    return 0;
}

int fwl_agent_boot(fwl_agent *a) {
    bool found;
    fwl_slot running;
    char why[240], reason[sizeof a->rec.report_reason];

    if (load_record(a, &found) != 0) return FWL_AGENT_ERR_STORAGE;
    if (a->hal->boot_info(a->ctx, &a->boot) != FWL_HAL_OK) {
        logf_(a, FWL_LOG_ERROR, "cannot read the boot state");
        return FWL_AGENT_ERR_STORAGE;
    }
    running = a->boot.running;
    if (!found) {
        /* A fresh device runs its factory image. */
        fwl_slot_record *s;
        memset(&a->rec, 0, sizeof a->rec);
        a->rec.pending = -1;
        a->rec.active = running;
        a->rec.confirmed = true;
        s = &a->rec.slots[running];
        if (a->hal->factory_image(a->ctx, &s->image) != FWL_HAL_OK) {
            logf_(a, FWL_LOG_ERROR, "cannot set up the factory image");
            return FWL_AGENT_ERR_STORAGE;
        }
        s->present = true;
        a->rec.highest_security_version = s->image.security_version;
        report(a, FWL_STATE_IDLE, NULL, NULL);
        if (store(a) != 0) return FWL_AGENT_ERR_STORAGE;
        logf_(a, FWL_LOG_INFO, "first boot: factory image %s in slot %s", s->image.version,
              slot_label(running));
    }

    /* A pending image: did the boot loader start it? */
    if (a->rec.pending >= 0) {
        fwl_slot p = (fwl_slot)a->rec.pending;
        a->rec.pending = -1;
        if (running == p) {
            a->rec.active = p;
            a->rec.confirmed = false;
            report(a, FWL_STATE_REBOOTING, a->rec.slots[p].image.version, NULL);
        } else {
            snprintf(reason, sizeof reason,
                     "boot-attempts: the boot loader did not start the new image in slot %s",
                     slot_label(p));
            forget_failed(a, p, reason);
        }
        if (store(a) != 0) return FWL_AGENT_ERR_STORAGE;
    }

    if (!a->rec.confirmed) {
        if (running != a->rec.active) {
            /* The trial image reset without confirming and the boot loader went back. */
            snprintf(reason, sizeof reason,
                     "boot-attempts: the new image in slot %s did not confirm; the boot loader "
                     "went back to slot %s",
                     slot_label(a->rec.active), slot_label(running));
            forget_failed(a, a->rec.active, reason);
            a->rec.active = running;
            a->rec.confirmed = true;
            if (store(a) != 0) return FWL_AGENT_ERR_STORAGE;
        } else if (a->boot.trial) {
            if (a->boot.boot_attempts > a->settings.max_boot_attempts) {
                snprintf(reason, sizeof reason, "boot-attempts: not confirmed after %u boots",
                         (unsigned)a->settings.max_boot_attempts);
                return roll_back(a, reason);
            }
            if (self_check(a, why, sizeof why) != 0) {
                snprintf(reason, sizeof reason, "self-check: %s", why);
                return roll_back(a, reason);
            }
            /* Boot loader first: a crash between the two is finished below next boot. */
            if (a->hal->slot_mark_valid(a->ctx) != FWL_HAL_OK) {
                logf_(a, FWL_LOG_ERROR, "cannot mark the new image valid");
                return FWL_AGENT_ERR_STORAGE;
            }
            confirm(a);
            if (store(a) != 0) return FWL_AGENT_ERR_STORAGE;
            logf_(a, FWL_LOG_INFO, "confirmed %s in slot %s", a->rec.report_release,
                  slot_label(running));
        } else {
            /* Marked valid before a crash, the record was not written yet. */
            confirm(a);
            if (store(a) != 0) return FWL_AGENT_ERR_STORAGE;
        }
    } else if (a->boot.trial) {
        /* The record has given this image up (a crash between the record and the rollback). */
        logf_(a, FWL_LOG_WARN, "slot %s runs as a trial the record does not expect: rolling back",
              slot_label(running));
        if (a->hal->slot_rollback(a->ctx) != FWL_HAL_OK) return FWL_AGENT_ERR_NO_BOOTABLE;
        return FWL_AGENT_RESTART;
    } else if (a->rec.active != running) {
        logf_(a, FWL_LOG_WARN, "the boot loader started slot %s, the record expected slot %s",
              slot_label(running), slot_label(a->rec.active));
        a->rec.active = running;
        if (store(a) != 0) return FWL_AGENT_ERR_STORAGE;
    }
    return verify_running(a);
}

/* ---- download ------------------------------------------------------------------------------- */

static uint64_t received(const fwl_agent *a) {
    uint64_t n = 0;
    (void)fwl_image_verifier_received(&a->verifier, &n);
    return n;
}

static int on_head(void *user, int status, int64_t range_start, int64_t content_length) {
    fwl_agent *a = (fwl_agent *)user;
    uint64_t start = a->dl.start;
    a->dl.status = status;
    if (status == 200) {
        /* A server that ignores Range sends everything: skip what the slot already holds. */
        a->dl.skip = start;
    } else if (status == 206) {
        if (range_start < 0 || (uint64_t)range_start != start) {
            fail_set(&a->dl.failure, FWL_FAIL_NETWORK, "download",
                     "the server answered another range");
            a->dl.failed = true;
            return -1;
        }
        a->dl.skip = 0;
    } else {
        fail_set(&a->dl.failure, FWL_FAIL_NETWORK, "download", "HTTP status %d", status);
        a->dl.failed = true;
        return -1;
    }
    if (content_length >= 0 && (uint64_t)content_length >= a->dl.skip &&
        (uint64_t)content_length - a->dl.skip > a->dl.size - start) {
        fail_set(&a->dl.failure, FWL_FAIL_REFUSED, "image-size",
                 "the server announces %llu bytes, the manifest states %llu",
                 (unsigned long long)((uint64_t)content_length - a->dl.skip + start),
                 (unsigned long long)a->dl.size);
        a->dl.failed = true;
        return -1;
    }
    return 0;
}

static int on_body(void *user, const uint8_t *data, size_t len) {
    fwl_agent *a = (fwl_agent *)user;
    int s;
    if (stopping(a)) {
        fail_set(&a->dl.failure, FWL_FAIL_NETWORK, "download", "shutting down");
        a->dl.failed = true;
        return -1;
    }
    if (ticks(a) >= a->dl.deadline_ms) {
        fail_set(&a->dl.failure, FWL_FAIL_NETWORK, "download-stalled",
                 "no progress within the time limit");
        a->dl.failed = true;
        return -1;
    }
    if (a->dl.skip > 0) {
        size_t drop = a->dl.skip < len ? (size_t)a->dl.skip : len;
        a->dl.skip -= drop;
        data += drop;
        len -= drop;
    }
    if (len == 0) return 0;
    /* Verify before writing: the slot only ever holds bytes the verifier accepted. */
    s = fwl_image_verifier_update(&a->verifier, data, len);
    if (s != FWL_OK) {
        lib_fail(&a->dl.failure, FWL_FAIL_REFUSED, s);
        a->dl.failed = true;
        return -1;
    }
    if (a->hal->slot_write(a->ctx, a->dl.slot, data, len) != FWL_HAL_OK) {
        fail_set(&a->dl.failure, FWL_FAIL_STORAGE, "slot-storage", "cannot write slot %s",
                 slot_label(a->dl.slot));
        a->dl.failed = true;
        return -1;
    }
    return 0;
}

/* One request from what the verifier holds. 0 when the body ended, -1 with `*f`. */
static int fetch_once(fwl_agent *a, const char *url, fwl_slot slot, uint64_t size,
                      uint64_t deadline, fwl_failure *f) {
    fwl_http_request req;
    fwl_http_sink sink;
    uint64_t now = ticks(a);
    int rc;
    a->dl.slot = slot;
    a->dl.size = size;
    a->dl.start = received(a);
    a->dl.skip = 0;
    a->dl.deadline_ms = deadline;
    a->dl.failed = false;
    a->dl.status = 0;
    if (a->dl.start == size) return 0;
    memset(&req, 0, sizeof req);
    req.url = url;
    req.offset = a->dl.start;
    req.stall_timeout_ms = a->settings.stall_timeout_s * 1000u;
    req.total_timeout_ms =
        deadline > now + 1000 ? (uint32_t)((deadline - now) > 0xFFFFFFFFu ? 0xFFFFFFFFu
                                                                           : (deadline - now))
                              : 1000u;
    req.buf = a->chunk;
    req.buf_len = sizeof a->chunk;
    sink.on_head = on_head;
    sink.on_body = on_body;
    sink.user = a;
    rc = a->hal->http_get(a->ctx, &req, &sink);
    if (a->dl.failed) {
        *f = a->dl.failure;
        return -1;
    }
    switch (rc) {
    case FWL_HAL_OK:
        if (a->dl.status == 0) {
            fail_set(f, FWL_FAIL_NETWORK, "download", "no response");
            return -1;
        }
        return 0;
    case FWL_HAL_ERR_TIMEOUT:
        fail_set(f, FWL_FAIL_NETWORK, "download-stalled", "no progress within the time limit");
        return -1;
    default:
        fail_set(f, FWL_FAIL_NETWORK, "download", "the request to %.120s failed", url);
        return -1;
    }
}

/* Requests until the verifier holds `size` bytes, the deadline passes or requests keep failing. */
static int fetch(fwl_agent *a, const char *url, fwl_slot slot, uint64_t size, fwl_failure *f) {
    uint64_t rate = a->settings.min_download_rate > 0 ? a->settings.min_download_rate : 1;
    uint64_t deadline = ticks(a) + (uint64_t)a->settings.download_grace_s * 1000u +
                        size / rate * 1000u;
    uint32_t failures = 0;
    for (;;) {
        uint64_t before = received(a), got;
        int rc = fetch_once(a, url, slot, size, deadline, f);
        got = received(a);
        if (rc == 0 && got == size) return 0;
        if (rc == 0) {
            fail_set(f, FWL_FAIL_NETWORK, "image-size",
                     "image truncated: %llu of %llu bytes arrived", (unsigned long long)got,
                     (unsigned long long)size);
        } else if (f->kind != FWL_FAIL_NETWORK || strcmp(f->check, "download-stalled") == 0) {
            return -1;
        }
        if (got == before) failures++;
        if (failures >= a->settings.download_requests || ticks(a) >= deadline || stopping(a))
            return -1;
        logf_(a, FWL_LOG_WARN, "download interrupted at %llu bytes (%s: %s); resuming",
              (unsigned long long)got, f->check, f->message);
        a->hal->sleep_ms(a->ctx, 200);
    }
}

/* Feeds the bytes the slot already holds to the verifier; returns how many, or -1. */
static int rehash(fwl_agent *a, fwl_slot slot, uint64_t held, fwl_failure *f) {
    uint64_t offset = 0;
    while (offset < held) {
        size_t want = sizeof a->chunk, got = 0;
        int s;
        if (held - offset < want) want = (size_t)(held - offset);
        if (a->hal->slot_read(a->ctx, slot, offset, a->chunk, want, &got) != FWL_HAL_OK ||
            got == 0 || got > want) {
            fail_set(f, FWL_FAIL_STORAGE, "slot-storage", "slot %s ended while re-hashing",
                     slot_label(slot));
            return -1;
        }
        s = fwl_image_verifier_update(&a->verifier, a->chunk, got);
        if (s != FWL_OK) {
            lib_fail(f, FWL_FAIL_REFUSED, s);
            return -1;
        }
        offset += got;
    }
    return 0;
}

/* Streams the image into `slot` through the verifier; resumes from what the slot holds. */
static int download(fwl_agent *a, const char *url, fwl_slot slot, uint64_t size,
                    const uint8_t sha256[32], bool resume, fwl_failure *f) {
    for (;;) {
        uint64_t held = 0;
        int s = fwl_image_verifier_init_raw(&a->verifier, size, sha256, 32);
        if (s != FWL_OK) {
            lib_fail(f, FWL_FAIL_REFUSED, s);
            return -1;
        }
        if (resume) {
            int rc;
            if (a->hal->slot_held(a->ctx, slot, &held) != FWL_HAL_OK || held > size) held = 0;
            rc = a->hal->slot_begin(a->ctx, slot, size, held);
            if (rc == FWL_HAL_ERR_UNSUPPORTED && held > 0) {
                held = 0;
                rc = a->hal->slot_begin(a->ctx, slot, size, 0);
            }
            if (rc != FWL_HAL_OK) {
                fail_set(f, FWL_FAIL_STORAGE, "slot-storage", "cannot prepare slot %s",
                         slot_label(slot));
                return -1;
            }
            if (held > 0) {
                logf_(a, FWL_LOG_INFO, "resuming the download at byte %llu",
                      (unsigned long long)held);
                if (rehash(a, slot, held, f) != 0) return -1;
            }
        } else if (a->hal->slot_begin(a->ctx, slot, size, 0) != FWL_HAL_OK) {
            fail_set(f, FWL_FAIL_STORAGE, "slot-storage", "cannot prepare slot %s",
                     slot_label(slot));
            return -1;
        }
        if (fetch(a, url, slot, size, f) != 0) {
            (void)fwl_image_verifier_finish(&a->verifier);
            return -1;
        }
        s = fwl_image_verifier_finish(&a->verifier);
        if (s == FWL_OK) return 0;
        if (s == FWL_ERR_IMAGE_DIGEST_MISMATCH && held > 0) {
            /* The bytes kept from before may be what went wrong: start over once. */
            logf_(a, FWL_LOG_WARN, "resumed image does not verify; downloading it again");
            resume = false;
            continue;
        }
        lib_fail(f, FWL_FAIL_REFUSED, s);
        return -1;
    }
}

/* ---- notices -------------------------------------------------------------------------------- */

/* Verifies the notice with each trusted vendor key. "Not certified by this key" says least: any
 * other error is about the vendor whose key did certify the release key. */
static int verify_notice(fwl_agent *a, const uint8_t *payload, size_t len, uint64_t now,
                         fwl_notice **notice, fwl_manifest **manifest, size_t *vendor,
                         fwl_failure *f) {
    size_t i;
    int best = FWL_OK;
    char best_msg[sizeof f->message];
    best_msg[0] = '\0';
    for (i = 0; i < a->bundle->vendor_count; i++) {
        const uint8_t *key = a->bundle->vendors[i].key;
        int s = fwl_notice_verify(payload, len, key, 32, min_key_generation(a, key), now, notice,
                                  manifest);
        if (s == FWL_OK) {
            *vendor = i;
            return 0;
        }
        if (s == FWL_ERR_NOTICE_MALFORMED) {
            lib_fail(f, FWL_FAIL_REFUSED, s);
            return -1;
        }
        if (best == FWL_OK || best == FWL_ERR_KEY_NOT_CERTIFIED) {
            best = s;
            lib_message(s, best_msg, sizeof best_msg);
        }
    }
    if (best == FWL_OK) {
        fail_set(f, FWL_FAIL_REFUSED, "vendor-key", "no trusted vendor key");
        return -1;
    }
    fail_set(f, FWL_FAIL_REFUSED, fwl_status_check(best), "%s", best_msg);
    return -1;
}

static int install(fwl_agent *a, const uint8_t *payload, size_t len, const uint8_t release[32],
                   fwl_failure *f, char *version, size_t version_cap) {
    fwl_notice *notice = NULL;
    fwl_manifest *m = NULL;
    fwl_slot slot = FWL_SLOT_OTHER(a->boot.running);
    fwl_slot_record info;
    uint64_t now = a->hal->now(a->ctx), held = 0;
    size_t vendor = 0, url_len = 0;
    bool resume;
    int s, rc = -1;

    memset(&info, 0, sizeof info);
    if (verify_notice(a, payload, len, now, &notice, &m, &vendor, f) != 0) goto out;
    if (fwl_manifest_version(m, version, version_cap, NULL) != FWL_OK) version[0] = '\0';

    s = fwl_policy_decide(m, a->bundle->model, a->bundle->hardware,
                          a->rec.slots[a->boot.running].image.version, security_floor(a), now);
    if (s != FWL_OK) {
        lib_fail(f, FWL_FAIL_REFUSED, s);
        goto out;
    }
    s = fwl_notice_url(notice, a->url, sizeof a->url, &url_len);
    if (s != FWL_OK) {
        fail_set(f, FWL_FAIL_REFUSED, "notice-url", "the download URL is unusable (%s)",
                 fwl_status_str(s));
        goto out;
    }
    if (!(strncmp(a->url, "https://", 8) == 0 ||
          (a->settings.allow_plain_http && strncmp(a->url, "http://", 7) == 0))) {
        fail_set(f, FWL_FAIL_REFUSED, "notice-url", "the download URL is not https://");
        goto out;
    }
    fwl_strcpy(info.image.version, sizeof info.image.version, version);
    if (fwl_manifest_size(m, &info.image.size) != FWL_OK ||
        fwl_manifest_sha256(m, info.image.sha256, 32) != FWL_OK ||
        fwl_manifest_security_version(m, &info.image.security_version) != FWL_OK ||
        fwl_manifest_key_generation(m, &info.key_generation) != FWL_OK) {
        fail_set(f, FWL_FAIL_REFUSED, "manifest-format", "cannot read the verified manifest");
        goto out;
    }
    if (info.image.size == 0) {
        fail_set(f, FWL_FAIL_REFUSED, "image-size", "the manifest states an empty image");
        goto out;
    }
    info.present = true;
    info.has_release = true;
    memcpy(info.release, release, 32);
    info.has_signer = true;
    memcpy(info.vendor_key, a->bundle->vendors[vendor].key, 32);

    resume = a->rec.download && memcmp(a->rec.download_release, release, 32) == 0 &&
             a->rec.download_slot == slot;
    if (!resume) {
        /* The notice is kept so that an interrupted download resumes after a reset. */
        if (a->hal->state_store(a->ctx, FWL_KEY_NOTICE, payload, len) != FWL_HAL_OK) {
            fail_set(f, FWL_FAIL_STORAGE, "slot-storage", "cannot store the notice");
            goto out;
        }
        a->rec.download = true;
        memcpy(a->rec.download_release, release, 32);
        a->rec.download_slot = slot;
        a->rec.slots[slot].present = false;
        a->rec.pending = -1;
    }
    report(a, FWL_STATE_DOWNLOADING, version, NULL);
    if (store(a) != 0) {
        fail_set(f, FWL_FAIL_STORAGE, "slot-storage", "cannot store the record");
        goto out;
    }
    if (resume && a->hal->slot_held(a->ctx, slot, &held) != FWL_HAL_OK) held = 0;
    publish_status(a, (int64_t)held);
    logf_(a, FWL_LOG_INFO, "downloading %s (%llu bytes) into slot %s", version,
          (unsigned long long)info.image.size, slot_label(slot));

    if (download(a, a->url, slot, info.image.size, info.image.sha256, resume, f) != 0) goto out;

    rc = a->hal->slot_finalize(a->ctx, slot, &info.image);
    if (rc != FWL_HAL_OK) {
        if (rc == FWL_HAL_ERR_INVALID_IMAGE)
            fail_set(f, FWL_FAIL_REFUSED, "slot-storage",
                     "the verified image is not bootable on this device");
        else
            fail_set(f, FWL_FAIL_STORAGE, "slot-storage", "cannot finish slot %s",
                     slot_label(slot));
        rc = -1;
        goto out;
    }
    a->rec.download = false;
    a->rec.slots[slot] = info;
    a->rec.pending = (int)slot;
    report(a, FWL_STATE_INSTALLING, version, NULL);
    if (store(a) != 0) {
        fail_set(f, FWL_FAIL_STORAGE, "slot-storage", "cannot store the record");
        rc = -1;
        goto out;
    }
    if (a->hal->slot_set_pending(a->ctx, slot) != FWL_HAL_OK) {
        a->rec.pending = -1;
        a->rec.slots[slot].present = false;
        fail_set(f, FWL_FAIL_STORAGE, "slot-storage", "the boot loader refused slot %s",
                 slot_label(slot));
        rc = -1;
        goto out;
    }
    publish_status(a, -1);
    rc = 0;
out:
    fwl_manifest_free(m);
    fwl_notice_free(notice);
    return rc;
}

int fwl_agent_handle_notice(fwl_agent *a, const uint8_t *payload, size_t len, bool truncated) {
    uint8_t release[32];
    fwl_notice *parsed = NULL;
    fwl_failure f;
    char version[129], reason[sizeof a->rec.report_reason];
    const uint8_t *signed_manifest = NULL;
    size_t signed_len = 0;

    if (len == 0) return FWL_AGENT_OK; /* a cleared notice */
    /* Release id: the SHA-256 of the signed manifest (of the whole payload if it does not
     * decode). */
    if (!truncated && fwl_notice_parse(payload, len, &parsed) == FWL_OK &&
        fwl_notice_manifest(parsed, &signed_manifest, &signed_len) == FWL_OK)
        fwl_sha256_digest(signed_manifest, signed_len, release);
    else
        fwl_sha256_digest(payload, len, release);
    fwl_notice_free(parsed);

    if (is_processed(a, release)) return FWL_AGENT_OK;
    if (a->retry_set && memcmp(a->retry_release, release, 32) == 0 && ticks(a) < a->retry_at_ms)
        return FWL_AGENT_OK;

    memset(&f, 0, sizeof f);
    version[0] = '\0';
    if (truncated) {
        fail_set(&f, FWL_FAIL_REFUSED, "notice-format", "the notice is larger than %u bytes",
                 (unsigned)FWL_NOTICE_MAX);
    } else if (install(a, payload, len, release, &f, version, sizeof version) == 0) {
        return FWL_AGENT_RESTART;
    }
    if (stopping(a)) return FWL_AGENT_STOPPED;

    if (f.kind == FWL_FAIL_NETWORK) {
        a->retry_set = true;
        memcpy(a->retry_release, release, 32);
        a->retry_at_ms = ticks(a) + (uint64_t)a->settings.retry_after_s * 1000u;
    } else {
        a->retry_set = false;
        mark_processed(a, release);
        if (a->rec.download && memcmp(a->rec.download_release, release, 32) == 0)
            a->rec.download = false;
    }
    snprintf(reason, sizeof reason, "%s: %s", f.check, f.message);
    logf_(a, FWL_LOG_WARN, "update %s failed: %s", version[0] ? version : "(unverified)", reason);
    report(a, FWL_STATE_FAILED, version[0] ? version : NULL, reason);
    if (store(a) != 0) return FWL_AGENT_ERR_STORAGE;
    publish_status(a, -1);
    return FWL_AGENT_OK;
}

/* ---- serving -------------------------------------------------------------------------------- */

static void close_session(fwl_agent *a) {
    if (a->session) a->hal->mqtt_disconnect(a->ctx);
    a->session = false;
    a->connected = false;
}

static void sleep_unless_stopped(fwl_agent *a, uint32_t ms) {
    while (ms > 0 && !stopping(a)) {
        uint32_t step = ms < POLL_MS ? ms : POLL_MS;
        a->hal->sleep_ms(a->ctx, step);
        ms -= step;
    }
}

/* After a notice: when the download in progress failed on the network, resume it later. */
static void schedule_resume(fwl_agent *a) {
    if (a->rec.download && a->retry_set &&
        memcmp(a->retry_release, a->rec.download_release, 32) == 0) {
        a->resume_due = true;
        a->resume_at_ms = a->retry_at_ms;
    }
}

static int resume_download(fwl_agent *a) {
    size_t len = 0;
    if (a->hal->state_load(a->ctx, FWL_KEY_NOTICE, a->msg, sizeof a->msg, &len) != FWL_HAL_OK) {
        a->rec.download = false;
        return store(a) == 0 ? FWL_AGENT_OK : FWL_AGENT_ERR_STORAGE;
    }
    a->retry_set = false;
    return fwl_agent_handle_notice(a, a->msg, len, false);
}

int fwl_agent_serve(fwl_agent *a, volatile const int *stop) {
    uint32_t backoff = 500;
    a->stop = stop;
    for (;;) {
        fwl_mqtt_event ev;
        int rc, r = FWL_AGENT_OK;
        uint64_t now;
        if (stopping(a)) {
            close_session(a);
            return FWL_AGENT_STOPPED;
        }
        if (!a->session) {
            if (a->hal->mqtt_connect(a->ctx, &a->mqtt) != FWL_HAL_OK) {
                logf_(a, FWL_LOG_WARN, "cannot start the MQTT session; retrying in %u ms",
                      (unsigned)backoff);
                sleep_unless_stopped(a, backoff);
                backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
                continue;
            }
            backoff = 500;
            a->session = true;
            a->connected = false;
            /* A download interrupted by a reset resumes on the first connect. */
            a->resume_due = a->rec.download;
            a->resume_at_ms = ticks(a);
        }
        memset(&ev, 0, sizeof ev);
        rc = a->hal->mqtt_poll(a->ctx, POLL_MS, &ev, a->msg, sizeof a->msg);
        if (rc == FWL_HAL_OK) {
            switch (ev.kind) {
            case FWL_MQTT_CONNECTED:
                a->connected = true;
                logf_(a, FWL_LOG_INFO, "connected to %s", a->mqtt.url);
                /* Sessions are clean: subscribe on every CONNACK. */
                (void)a->hal->mqtt_subscribe(a->ctx, a->topic_notice, 1);
                publish_status(a, -1);
                (void)a->hal->mqtt_publish(a->ctx, a->topic_check, "", 0, 1, false);
                a->last_check_ms = ticks(a);
                break;
            case FWL_MQTT_DISCONNECTED:
                if (a->connected) logf_(a, FWL_LOG_WARN, "disconnected; reconnecting");
                a->connected = false;
                break;
            case FWL_MQTT_MESSAGE:
                if (strcmp(ev.topic, a->topic_notice) == 0) {
                    r = fwl_agent_handle_notice(a, a->msg, ev.len, ev.truncated);
                    schedule_resume(a);
                }
                break;
            }
        }
        now = ticks(a);
        if (r == FWL_AGENT_OK && a->connected && a->resume_due && now >= a->resume_at_ms) {
            a->resume_due = false;
            if (a->rec.download) {
                r = resume_download(a);
                schedule_resume(a);
            }
        }
        if (r != FWL_AGENT_OK) {
            close_session(a);
            return r;
        }
        if (a->connected && now - a->last_check_ms >= (uint64_t)a->settings.check_interval_s * 1000u) {
            /* The status goes with every check: a report lost while the gateway was away (it
             * subscribes without a persistent session) reaches it within one interval. */
            publish_status(a, -1);
            (void)a->hal->mqtt_publish(a->ctx, a->topic_check, "", 0, 1, false);
            a->last_check_ms = now;
        }
    }
}

int fwl_agent_run(fwl_agent *a, volatile const int *stop) {
    int rc;
    a->stop = stop;
    rc = fwl_agent_boot(a);
    if (rc == FWL_AGENT_OK) rc = fwl_agent_serve(a, stop);
    if (rc == FWL_AGENT_RESTART) {
        logf_(a, FWL_LOG_INFO, "restarting");
        a->hal->restart(a->ctx);
        logf_(a, FWL_LOG_ERROR, "restart failed");
        return FWL_AGENT_ERR_STORAGE;
    }
    return rc;
}

/* ---- setup ---------------------------------------------------------------------------------- */

void fwl_agent_settings_default(fwl_agent_settings *s) {
    memset(s, 0, sizeof *s);
    s->check_interval_s = 60;
    s->max_boot_attempts = 3;
    s->min_download_rate = 1024;
    s->download_grace_s = 60;
    s->stall_timeout_s = 15;
    s->download_requests = 4;
    s->retry_after_s = 30;
    s->keepalive_s = 30;
    s->allow_plain_http = false;
    s->self_check_marker = false;
}

int fwl_agent_init(fwl_agent *a, const fwl_hal *hal, void *ctx, const fwl_bundle *bundle,
                   const fwl_agent_settings *settings) {
    char err[160];
    if (a == NULL || hal == NULL || bundle == NULL) return FWL_AGENT_ERR_CONFIG;
    memset(a, 0, sizeof *a);
    a->hal = hal;
    a->ctx = ctx;
    a->bundle = bundle;
    if (settings != NULL) a->settings = *settings;
    else fwl_agent_settings_default(&a->settings);
    a->rec.pending = -1;
    if (hal->mqtt_connect == NULL || hal->mqtt_disconnect == NULL || hal->mqtt_subscribe == NULL ||
        hal->mqtt_publish == NULL || hal->mqtt_poll == NULL || hal->http_get == NULL ||
        hal->boot_info == NULL || hal->factory_image == NULL || hal->slot_held == NULL ||
        hal->slot_begin == NULL || hal->slot_write == NULL || hal->slot_read == NULL ||
        hal->slot_finalize == NULL || hal->slot_set_pending == NULL ||
        hal->slot_mark_valid == NULL || hal->slot_rollback == NULL || hal->state_load == NULL ||
        hal->state_store == NULL || hal->now == NULL || hal->ticks_ms == NULL ||
        hal->sleep_ms == NULL || hal->restart == NULL)
        return FWL_AGENT_ERR_CONFIG;
    if (fwl_bundle_check(bundle, err, sizeof err) != 0) {
        logf_(a, FWL_LOG_ERROR, "%s", err);
        return FWL_AGENT_ERR_CONFIG;
    }
    snprintf(a->topic_notice, sizeof a->topic_notice, TOPIC_PREFIX "%s/notice", bundle->device_id);
    snprintf(a->topic_status, sizeof a->topic_status, TOPIC_PREFIX "%s/status", bundle->device_id);
    snprintf(a->topic_check, sizeof a->topic_check, TOPIC_PREFIX "%s/check", bundle->device_id);
    a->mqtt.url = bundle->mqtt_url;
    a->mqtt.client_id = bundle->device_id;
    a->mqtt.ca_pem = bundle->ca_cert_pem;
    a->mqtt.cert_pem = bundle->device_cert_pem;
    a->mqtt.key_pem = bundle->device_key_pem;
    a->mqtt.keepalive_s = a->settings.keepalive_s;
    return FWL_AGENT_OK;
}

const fwl_record *fwl_agent_record(const fwl_agent *a) { return &a->rec; }
