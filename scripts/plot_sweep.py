#!/usr/bin/env python3
"""Plots the load test's --sweep: tick time and kbps per client against
units and clients.

    cargo run --release --example loadtest -- --sweep --seconds 10 --json \
        | grep '^{' > docs/sweep.jsonl
    python3 scripts/plot_sweep.py docs/sweep.jsonl docs/sweep.png

Reads one JSON report per line (other lines are ignored) and writes a PNG
with four panels. Needs matplotlib (`pip install matplotlib` or
`apt-get install python3-matplotlib`).
"""

import json
import sys
from collections import defaultdict


def load(path):
    """The sweep's reports, one dict per run."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not a JSON report: {e}")
    if not rows:
        sys.exit(f"{path}: no JSON reports (run the load test with --json)")
    return rows


def series(rows, by, along, value):
    """{by value: [(along, value), ...]} sorted along the x axis."""
    out = defaultdict(list)
    for r in rows:
        out[r[by]].append((r[along], r[value]))
    return {k: sorted(v) for k, v in sorted(out.items())}


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_sweep.py SWEEP.jsonl OUT.png")
    rows = load(sys.argv[1])
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("matplotlib is missing: pip install matplotlib")

    fig, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    panels = [
        (axes[0][0], "clients", "units", "tick_ms_p99", "tick p99 (ms)"),
        (axes[0][1], "units", "clients", "tick_ms_p99", "tick p99 (ms)"),
        (axes[1][0], "clients", "units", "kbps_per_client_p50", "kbps per client (p50)"),
        (axes[1][1], "units", "clients", "kbps_per_client_p50", "kbps per client (p50)"),
    ]
    active = [r for r in rows if not r.get("idle_units")]
    idle = [r for r in rows if r.get("idle_units")]
    for ax, by, along, value, label in panels:
        for key, points in series(active, by, along, value).items():
            xs = [p[0] for p in points]
            ax.plot(xs, [p[1] for p in points], marker="o", label=f"{key:,} {by}")
            if value == "tick_ms_p99":
                p50 = dict(series(active, by, along, "tick_ms_p50")[key])
                ax.plot(xs, [p50[x] for x in xs], linestyle=":", color=ax.lines[-1].get_color())
        # Runs with idle units: x is every unit that exists.
        for r in idle:
            x = r["units"] + r["idle_units"] if along == "units" else r["clients"]
            ax.plot(
                [x],
                [r[value]],
                marker="*",
                markersize=12,
                linestyle="none",
                label=f'{r["units"]:,} moving + {r["idle_units"]:,} idle, {r["clients"]} clients',
            )
        ax.set_xscale("log")
        ax.set_xlabel(along)
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
        if value == "tick_ms_p99":
            ax.axhline(50, color="red", linewidth=0.8, linestyle="--")
            ax.set_yscale("log")
            ax.set_title(f"server tick vs {along}: p99 solid, p50 dotted", fontsize="medium")
        else:
            ax.axhline(256, color="red", linewidth=0.8, linestyle="--")
            ax.set_title(f"received per client vs {along}", fontsize="medium")
            ax.set_ylim(bottom=0)
    fig.suptitle("Galaxy RTS load test sweep (red: 50 ms tick and 256 kbps targets)")
    fig.savefig(sys.argv[2], dpi=100)
    print(f"wrote {sys.argv[2]} from {len(rows)} runs")


if __name__ == "__main__":
    main()
