#!/usr/bin/env python3
"""Plot of one `bench/load.sh` run: devices reported / downloading / confirmed, RSS and CPU of
the gateway, mosquitto and the swarm over time.

    python3 bench/plot_load.py SAMPLES.csv PROGRESS.txt START_MS PUBLISH_MS OUT.png DEVICES
"""

import csv
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    samples_path, progress_path, start, publish, out, devices = sys.argv[1:]
    start, publish, devices = int(start), int(publish), int(devices)
    rows = list(csv.DictReader(open(samples_path)))
    hz = os.sysconf("SC_CLK_TCK")

    # progress lines: "K progress MS reported N downloading N confirmed N failed N", one series per
    # swarm process; summed on a 1 s grid (each process's last value holds until its next line).
    series = defaultdict(list)
    for line in open(progress_path):
        f = line.split()
        if len(f) >= 11 and f[1] == "progress":
            series[f[0]].append((int(f[2]), int(f[4]), int(f[6]), int(f[8])))
    grid, totals = [], []
    if series:
        t0 = min(s[0][0] for s in series.values())
        t1 = max(s[-1][0] for s in series.values())
        t = t0
        while t <= t1 + 1000:
            tot = [0, 0, 0]
            for s in series.values():
                last = None
                for p in s:
                    if p[0] <= t:
                        last = p
                    else:
                        break
                if last:
                    tot = [a + b for a, b in zip(tot, last[1:])]
            grid.append((t - start) / 1000)
            totals.append(tot)
            t += 1000

    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(9, 10), sharex=True)
    if grid:
        for i, label in enumerate(["reported (connected)", "downloading/installing", "confirmed 1.1.0"]):
            ax1.plot(grid, [t[i] for t in totals], label=label)
    ax1.axhline(devices, color="grey", linewidth=0.8, linestyle=":")
    ax1.set_ylabel("devices")
    ax1.legend(loc="center right", fontsize=8)
    ax1.set_title(f"Load: {devices} devices, one gateway + mosquitto, loopback")

    times = [(int(r["ms"]) - start) / 1000 for r in rows]
    for role, color in [("gateway", "C0"), ("mosquitto", "C1"), ("swarm", "C2")]:
        rss = [int(r[f"{role}_rss_kib"]) / 1024 for r in rows]
        ax2.plot(times, rss, label=role, color=color)
        cpu = [0.0]
        for a, b in zip(rows, rows[1:]):
            dt = (int(b["ms"]) - int(a["ms"])) / 1000
            d = int(b[f"{role}_ticks"]) - int(a[f"{role}_ticks"])
            cpu.append(100 * d / hz / dt if dt > 0 else 0.0)
        ax3.plot(times, cpu, label=role, color=color, linewidth=0.8)
    ax2.axhline(200, color="C0", linewidth=0.8, linestyle=":", label="gateway target 200 MiB")
    ax2.set_yscale("log")
    ax2.set_ylabel("RSS, MiB (log)")
    ax2.legend(fontsize=8)
    ax3.set_ylabel("CPU, % of one core")
    ax3.set_xlabel("seconds since the swarm started")
    ax3.legend(fontsize=8)
    for ax in (ax1, ax2, ax3):
        ax.axvline((publish - start) / 1000, color="red", linewidth=0.8, linestyle="--")
        ax.grid(True, alpha=0.3)
    ax1.text((publish - start) / 1000, devices * 0.5, " publish 1.1.0", color="red", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    main()
