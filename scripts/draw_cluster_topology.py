"""Draw docs/images/cluster_topology.png: the cluster topology of docs/CLUSTER.md.

Run from the repository root with the rig's venv (matplotlib is a dev dependency):
    .venv/bin/python scripts/draw_cluster_topology.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "images" / "cluster_topology.png"
RIG, SYSTEM, INFRA = "#dbe9f6", "#fde9c9", "#dff0d8"


def box(ax, x, y, w, h, text, color, size=9):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec="#444"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)


def arrow(ax, a, b, text="", style="-|>", color="#333", offset=(0.0, 0.12)):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=12, color=color, lw=1.2))
    if text:
        ax.text((a[0] + b[0]) / 2 + offset[0], (a[1] + b[1]) / 2 + offset[1], text, ha="center", fontsize=7.5)


def main() -> None:
    fig, ax = plt.subplots(figsize=(11, 5.6))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 5.6)
    ax.axis("off")
    ax.add_patch(FancyBboxPatch((2.3, 0.25), 8.5, 5.0, boxstyle="round,pad=0.02", fc="none", ec="#999", ls="--"))
    ax.text(
        2.45,
        5.05,
        "compose network bridge-net (docker-compose.yml + .test.yml + .cluster.yml)",
        fontsize=8,
        color="#666",
    )

    box(ax, 0.2, 1.5, 1.8, 1.1, "rig (wsrig)\nprobes, clients,\nfaults (docker SDK)", RIG)
    box(ax, 0.2, 0.3, 1.8, 0.9, "127.0.0.1 only:\n:8000 balancer\n:8404 /stats  :6379", RIG, 8)

    box(ax, 2.6, 4.0, 1.7, 0.9, "ai-trading-bot\n(publisher)", SYSTEM)
    box(ax, 2.6, 2.6, 1.7, 0.8, "fault-proxy\n:9000", RIG)
    box(ax, 4.9, 2.1, 1.7, 1.1, "haproxy :8000\nleastconn, WS\ncheck GET /ready", INFRA)
    for i, y in enumerate((3.9, 2.5, 1.1)):
        box(ax, 7.2, y, 1.9, 0.85, f"dashboard-backend-{i + 1}\nown /data volume", SYSTEM, 8.5)
    box(ax, 9.55, 2.2, 1.1, 1.0, "redis\nAOF\n(always)", INFRA, 8.5)
    box(ax, 4.9, 0.5, 1.7, 0.8, "reference-server\n:8010 (unchanged)", RIG, 8)

    arrow(ax, (3.45, 4.0), (3.45, 3.4), "/ws", offset=(0.25, 0.0))
    arrow(ax, (4.3, 3.0), (4.9, 2.85), "/ws", offset=(0.0, 0.1))
    arrow(ax, (2.0, 2.0), (4.9, 2.3), "/ws/stream, HTTP", offset=(0.0, -0.3))
    for y in (4.3, 2.9, 1.5):
        arrow(ax, (6.6, 2.65), (7.2, y + 0.05))
        arrow(ax, (9.1, y + 0.05), (9.55, 2.7), style="<|-|>", color="#2a7a2a")
    ax.text(9.3, 3.55, "shared log\n(Redis mode: TODO)", fontsize=7, color="#2a7a2a", ha="center")
    fig.savefig(OUT, dpi=110, bbox_inches="tight")
    print(OUT)


if __name__ == "__main__":
    main()
