#!/usr/bin/env python3
"""Summary table and plot of `channel_latency --csv` files (the paper's figure 10).

    python3 bench/plot_latency.py OUT_PREFIX FILE.csv [FILE.csv ...]

Writes OUT_PREFIX.md (mean, p50, p95, p99, max per ledger and set, and over all sets) and, when
matplotlib is importable, OUT_PREFIX.png: latency against payload length, one colour per set, one
panel per ledger, with the per-set means as horizontal lines.
"""

import csv
import sys
from collections import defaultdict


def percentile(sorted_values, p):
    """Nearest rank on the sorted values (the same rule as the example's own report)."""
    return sorted_values[int((len(sorted_values) - 1) * p + 0.5)]


def stats(values):
    v = sorted(values)
    return {
        "n": len(v),
        "mean": sum(v) / len(v),
        "p50": percentile(v, 0.50),
        "p95": percentile(v, 0.95),
        "p99": percentile(v, 0.99),
        "max": v[-1],
    }


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    prefix, files = sys.argv[1], sys.argv[2:]
    data = defaultdict(lambda: defaultdict(list))  # ledger -> set -> [(chars, ms)]
    for path in files:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                data[row["ledger"]][int(row["set"])].append(
                    (int(row["payload_chars"]), float(row["latency_ms"]))
                )
    if not data:
        sys.exit("no rows in " + ", ".join(files))

    lines = [
        "| ledger | set | messages | payload (chars) | mean | p50 | p95 | p99 | max |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for ledger, sets in data.items():
        everything = []
        for number in sorted(sets):
            rows = sets[number]
            everything.extend(rows)
            s = stats([ms for _, ms in rows])
            chars = [c for c, _ in rows]
            lines.append(
                f"| {ledger} | {number} | {s['n']} | {min(chars)}–{max(chars)} | {s['mean']:.2f} ms "
                f"| {s['p50']:.2f} ms | {s['p95']:.2f} ms | {s['p99']:.2f} ms | {s['max']:.2f} ms |"
            )
        s = stats([ms for _, ms in everything])
        chars = [c for c, _ in everything]
        lines.append(
            f"| **{ledger}** | **all** | {s['n']} | {min(chars)}–{max(chars)} | **{s['mean']:.2f} ms** "
            f"| **{s['p50']:.2f} ms** | **{s['p95']:.2f} ms** | **{s['p99']:.2f} ms** | {s['max']:.2f} ms |"
        )
    table = "\n".join(lines) + "\n"
    with open(prefix + ".md", "w") as f:
        f.write(table)
    print(table, end="")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: matplotlib is not importable")
        return
    ledgers = list(data)
    fig, axes = plt.subplots(1, len(ledgers), figsize=(7 * len(ledgers), 4.5), squeeze=False)
    for ax, ledger in zip(axes[0], ledgers):
        sets = data[ledger]
        for number in sorted(sets):
            rows = sets[number]
            color = f"C{(number - 1) % 10}"
            ax.scatter(
                [c for c, _ in rows],
                [ms for _, ms in rows],
                s=9,
                alpha=0.6,
                color=color,
                label=f"set {number} (mean {stats([ms for _, ms in rows])['mean']:.2f} ms)",
            )
            ax.axhline(stats([ms for _, ms in rows])["mean"], color=color, linewidth=1)
        ax.set_yscale("log")
        ax.set_xlabel("payload (release notes), characters")
        ax.set_ylabel("vendor → gateway latency, ms (log scale)")
        everything = [ms for rows in sets.values() for _, ms in rows]
        s = stats(everything)
        ax.set_title(
            f"{ledger}: {len(sets)} sets × {len(everything) // len(sets)} messages\n"
            f"mean {s['mean']:.2f} ms, p50 {s['p50']:.2f}, p95 {s['p95']:.2f}, p99 {s['p99']:.2f} ms"
        )
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("Channel latency: publish (seal, sign, append) → follower read, verified, decrypted")
    fig.tight_layout()
    fig.savefig(prefix + ".png", dpi=110)
    print("plot: " + prefix + ".png")


if __name__ == "__main__":
    main()
