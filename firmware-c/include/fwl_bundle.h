/*
 * fwl_bundle.h — the provisioning bundle (docs/PROTOCOL.md §12), as `fwledger gateway device
 * add --out BUNDLE` writes it: a JSON object with `format` (1), `device_id`, `mac`, `model`,
 * `hardware`, `mqtt_url`, `http_url`, optional `sntp`, `ca_cert_pem`, `device_cert_pem`,
 * `device_key_pem` (PKCS#8), `vendors` ([{name, key (hex)}]), optional `wifi_ssid`,
 * `wifi_password`. It holds the device's private key: treat it as a secret.
 *
 * Fixed-size fields, no heap: a bundle is ~13 KiB (keep it static on a microcontroller).
 */
#ifndef FWL_BUNDLE_H
#define FWL_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Trusted vendors a device holds at most. */
#define FWL_MAX_VENDORS 4
/** Largest PEM text (certificate chain or key), NUL included. */
#define FWL_PEM_MAX 4096
/** Largest bundle file accepted. */
#define FWL_BUNDLE_MAX (4 * FWL_PEM_MAX)

typedef struct fwl_vendor {
    char name[65];
    uint8_t key[32]; /**< vendor root public key (Ed25519) */
} fwl_vendor;

typedef struct fwl_bundle {
    char device_id[65];
    char mac[33];
    char model[129];
    char hardware[129];
    char mqtt_url[257];
    char http_url[257];
    char sntp[129]; /**< "" when absent */
    char ca_cert_pem[FWL_PEM_MAX];
    char device_cert_pem[FWL_PEM_MAX];
    char device_key_pem[FWL_PEM_MAX];
    fwl_vendor vendors[FWL_MAX_VENDORS];
    size_t vendor_count;
    char wifi_ssid[33];     /**< "" when absent */
    char wifi_password[65]; /**< "" when absent */
} fwl_bundle;

/** Whether `id` is a valid device id: 1–64 characters of [A-Za-z0-9._-]. */
int fwl_device_id_valid(const char *id);

/** Parses and checks a bundle (as the Rust `Bundle::from_json` + `check`). Returns 0, or -1
 *  with a one-line reason in `err` (`err_cap` bytes, may be 0). */
int fwl_bundle_parse(fwl_bundle *b, const char *json, size_t len, char *err, size_t err_cap);

/** Checks the fields a device relies on. 0 or -1 with a reason. */
int fwl_bundle_check(const fwl_bundle *b, char *err, size_t err_cap);

/** Writes the bundle as JSON into `out`; returns the length or -1 when it does not fit. */
long fwl_bundle_write(const fwl_bundle *b, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* FWL_BUNDLE_H */
