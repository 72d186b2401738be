/*
 * fwledger-device-c — the C device agent on Linux, as a real program:
 *
 *   fwledger-device-c --bundle BUNDLE --state DIR [--factory-version 1.0.0] [options]
 *   fwledger-device-c --configure --bundle BUNDLE [--config-port N] [--config-timeout S]
 *
 * It needs nothing but a provisioning bundle made by `fwledger gateway device add`. Status
 * reports are also printed on stdout, one per line: "<device id> <json>". A pending update
 * "reboots" the device by re-executing this program with the same arguments.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_server.h"
#include "fwl_agent.h"
#include "hal_posix.h"
#include "util.h"

static fwl_bundle g_bundle;
static fwl_posix g_port;
static fwl_agent g_agent;
static char g_text[FWL_BUNDLE_MAX + 1];
static volatile int g_stop;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *out) {
    fputs("usage: fwledger-device-c --bundle BUNDLE --state DIR [--factory-version V]\n"
          "           [--check-interval S] [--stall-timeout S] [--retry-after S]\n"
          "           [--download-grace S] [--max-boot-attempts N] [--no-self-check-marker]\n"
          "           [--quiet]\n"
          "       fwledger-device-c --configure --bundle BUNDLE [--config-port PORT]\n"
          "           [--config-timeout S] [--config-port-file FILE] [--device-id ID]\n",
          out);
}

static int read_bundle_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    size_t n;
    if (f == NULL) {
        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
        return -1;
    }
    n = fread(g_text, 1, sizeof g_text, f);
    if (ferror(f) || n >= sizeof g_text) {
        fprintf(stderr, "error: %s: unreadable or larger than %u bytes\n", path,
                (unsigned)FWL_BUNDLE_MAX);
        fclose(f);
        return -1;
    }
    fclose(f);
    g_text[n] = '\0';
    *len = n;
    return 0;
}

static int parse_u32(const char *arg, const char *value, uint32_t *out) {
    char *end = NULL;
    unsigned long v;
    errno = 0;
    v = value != NULL ? strtoul(value, &end, 10) : 0;
    if (value == NULL || *value == '\0' || *end != '\0' || errno != 0 || v > 0xFFFFFFFFul) {
        fprintf(stderr, "error: %s needs a number\n", arg);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int main(int argc, char **argv) {
    const char *bundle_path = NULL, *state = NULL, *factory = "1.0.0", *port_file = NULL;
    const char *device_id = NULL;
    fwl_agent_settings settings;
    fwl_posix_options opt;
    uint32_t config_port = 0, config_timeout = 0;
    int configure = 0, quiet = 0, rc, i, cmp;
    size_t len = 0;
    char err[256];
    struct sigaction sa;

    fwl_agent_settings_default(&settings);
    settings.self_check_marker = true;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **str = NULL;
        uint32_t *num = NULL;
        if (strcmp(a, "--bundle") == 0) str = &bundle_path;
        else if (strcmp(a, "--state") == 0) str = &state;
        else if (strcmp(a, "--factory-version") == 0) str = &factory;
        else if (strcmp(a, "--device-id") == 0) str = &device_id;
        else if (strcmp(a, "--config-port-file") == 0) str = &port_file;
        else if (strcmp(a, "--check-interval") == 0) num = &settings.check_interval_s;
        else if (strcmp(a, "--stall-timeout") == 0) num = &settings.stall_timeout_s;
        else if (strcmp(a, "--retry-after") == 0) num = &settings.retry_after_s;
        else if (strcmp(a, "--download-grace") == 0) num = &settings.download_grace_s;
        else if (strcmp(a, "--max-boot-attempts") == 0) num = &settings.max_boot_attempts;
        else if (strcmp(a, "--config-port") == 0) num = &config_port;
        else if (strcmp(a, "--config-timeout") == 0) num = &config_timeout;
        else if (strcmp(a, "--configure") == 0) configure = 1;
        else if (strcmp(a, "--quiet") == 0) quiet = 1;
        else if (strcmp(a, "--no-self-check-marker") == 0) settings.self_check_marker = false;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "error: unknown argument %s\n", a);
            usage(stderr);
            return 2;
        }
        if (str == NULL && num == NULL) continue;
        if (i + 1 >= argc) {
            fprintf(stderr, "error: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (str != NULL) *str = argv[i];
        else if (parse_u32(a, argv[i], num) != 0) return 2;
    }
    if (bundle_path == NULL || (!configure && state == NULL)) {
        usage(stderr);
        return 2;
    }

    if (configure) {
        fwl_config_options co;
        memset(&co, 0, sizeof co);
        co.bundle_path = bundle_path;
        co.port = (uint16_t)config_port;
        co.timeout_s = config_timeout;
        co.port_file = port_file;
        co.device_id = device_id;
        if (co.device_id == NULL && read_bundle_text(bundle_path, &len) == 0 &&
            fwl_bundle_parse(&g_bundle, g_text, len, NULL, 0) == 0)
            co.device_id = g_bundle.device_id;
        if (co.device_id == NULL) co.device_id = "unprovisioned";
        if (config_port > 65535) {
            fprintf(stderr, "error: --config-port must be below 65536\n");
            return 2;
        }
        rc = fwl_config_serve(&co);
        return rc == 0 ? 0 : (rc == 1 ? 3 : 1);
    }

    if (read_bundle_text(bundle_path, &len) != 0) return 1;
    if (fwl_bundle_parse(&g_bundle, g_text, len, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s: %s\n", bundle_path, err);
        return 1;
    }
    if (fwl_version_compare(factory, factory, &cmp) != FWL_OK) {
        fprintf(stderr, "error: factory version \"%s\" is not a semantic version\n", factory);
        return 2;
    }
    /* Plain http:// downloads only from a loopback gateway (demos). */
    settings.allow_plain_http =
        strncmp(g_bundle.http_url, "http://", 7) == 0 && fwl_url_is_loopback(g_bundle.http_url);

    memset(&opt, 0, sizeof opt);
    opt.state_dir = state;
    opt.factory_version = factory;
    opt.argv = argv;
    opt.quiet = quiet != 0;
    if (fwl_posix_open(&g_port, &opt, &g_bundle) != 0) return 1;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (fwl_agent_init(&g_agent, &fwl_posix_hal, &g_port, &g_bundle, &settings) != FWL_AGENT_OK) {
        fprintf(stderr, "error: the agent cannot start with this bundle\n");
        return 1;
    }
    rc = fwl_agent_run(&g_agent, &g_stop);
    fwl_posix_close(&g_port);
    switch (rc) {
    case FWL_AGENT_STOPPED: return 0;
    case FWL_AGENT_ERR_NO_BOOTABLE:
        fprintf(stderr, "error: no verified image to boot\n");
        return 1;
    case FWL_AGENT_ERR_STORAGE:
        fprintf(stderr, "error: the state directory %s cannot be used\n", state);
        return 1;
    default:
        fprintf(stderr, "error: the agent stopped (%d)\n", rc);
        return 1;
    }
}
