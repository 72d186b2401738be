/*
 * Configuration mode of the POSIX device (the paper's provisioning flow): a minimal HTTP/1.1
 * server on 127.0.0.1 only, serving one page where the user uploads the provisioning bundle and
 * enters Wi-Fi and MQTT settings, and a QR code of the device id + page URL on the terminal.
 * One connection at a time, bounded requests (8 KiB head, 128 KiB body), 10 s per request.
 */
#ifndef FWL_CONFIG_SERVER_H
#define FWL_CONFIG_SERVER_H

#include <stdint.h>
#include <stdio.h>

typedef struct fwl_config_options {
    const char *bundle_path; /**< where the bundle is saved (atomically, mode 0600) */
    const char *device_id;   /**< shown on the page and in the QR code */
    uint16_t port;           /**< 0: any free port */
    uint32_t timeout_s;      /**< give up after this long without a saved bundle; 0 = never */
    const char *port_file;   /**< if set, the chosen port is written there (for scripts) */
} fwl_config_options;

/** Serves until a valid configuration is saved (0), the timeout passes (1) or an error (-1). */
int fwl_config_serve(const fwl_config_options *o);

/** Prints `text` as a QR code with Unicode half blocks (light modules drawn, for dark
 *  terminals), with a quiet zone. 0 or -1. */
int fwl_qr_print(FILE *out, const char *text);

#endif
