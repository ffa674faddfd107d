"""The data flow of a block, read from its traced symbol graph: a walk-through and a diagram.

Tracing the block itself (not a description of it) means the text and the picture show what
the ordering functions in orderings.py actually compute, shortcut included.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import mxnet as mx
from mxnet.gluon import HybridBlock

OPS = {"Convolution": "conv", "BatchNorm": "BN", "_npx_relu": "ReLU", "_npi_add": "+",
       "Activation": "ReLU", "elemwise_add": "+"}
COLOURS = {"conv": "#9ecae1", "BN": "#fdae6b", "ReLU": "#a1d99b", "+": "#d9d9d9",
           "input": "white"}


@dataclass(frozen=True)
class Node:
    """One operation of the block: its short name, kind, label and the nodes it reads."""

    name: str  # "conv1", "bn2", "relu0", "add0", or "x" for the input
    kind: str  # "input", "conv", "BN", "ReLU", "+"
    label: str  # e.g. "conv1 3x3/2"
    inputs: tuple[str, ...]


def _short(name: str, prefix: str) -> str:
    name = name[len(prefix):] if name.startswith(prefix) else name
    return name[:-len("_fwd")] if name.endswith("_fwd") else name


def _label(kind: str, short: str, attrs: dict) -> str:
    if kind != "conv":
        return short
    kernel = attrs["kernel"].strip("()").replace(", ", "x")
    stride = attrs["stride"].strip("()").split(",")[0]
    return f"{short} {kernel}" + ("" if stride == "1" else f"/{stride}")


def trace(block: HybridBlock) -> list[Node]:
    """The block's operations in execution order, starting with the input "x"."""
    out = block(mx.sym.var("x").as_np_ndarray())
    graph = json.loads(out.tojson())
    nodes, names = [Node("x", "input", "x", ())], {}
    for i, n in enumerate(graph["nodes"]):
        if n["op"] == "null":
            if n["name"] == "x":
                names[i] = "x"
            continue  # weights and BN statistics
        kind = OPS.get(n["op"], n["op"])
        short = _short(n["name"], block.prefix)
        names[i] = short
        reads = tuple(names[j[0]] for j in n["inputs"] if j[0] in names)
        nodes.append(Node(short, kind, _label(kind, short, n.get("attrs", {})), reads))
    return nodes


def main_path(nodes: list[Node]) -> list[str]:
    """The longest chain from the input to the output: the residual branch (+ what follows)."""
    best: dict[str, tuple[int, list[str]]] = {"x": (0, ["x"])}
    for n in nodes[1:]:
        length, path = max((best[i] for i in n.inputs), key=lambda b: b[0])
        best[n.name] = (length + 1, path + [n.name])
    return best[nodes[-1].name][1]


def walkthrough(block: HybridBlock) -> str:
    """One line per operation: what it is and what it reads; off-branch ones are marked."""
    nodes = trace(block)
    on_path = set(main_path(nodes))
    lines = []
    for n in nodes[1:]:
        role = "" if n.name in on_path else "   (shortcut)"
        lines.append(f"  {n.label:<14} <- {', '.join(n.inputs)}{role}")
    return "\n".join(lines + [f"  output = {nodes[-1].name}"])


def draw(block: HybridBlock, ax, title: str = "") -> None:
    """The traced graph on a matplotlib Axes: the main path left to right, shortcut
    operations below it, skip connections as arcs."""
    nodes = trace(block)
    path = main_path(nodes)
    pos = {name: (float(i), 0.0) for i, name in enumerate(path)}
    for n in nodes:  # off-path operations (a projection): below, between input and user
        if n.name not in pos:
            start = max(pos[i][0] for i in n.inputs)
            end = min(pos[m.name][0] for m in nodes if n.name in m.inputs)
            pos[n.name] = ((start + end) / 2, -0.9)
    for n in nodes:
        for src in n.inputs:
            (x0, y0), (x1, y1) = pos[src], pos[n.name]
            skip = y0 == y1 == 0 and x1 - x0 > 1  # identity shortcut over the branch
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(
                arrowstyle="-|>", color="0.35", shrinkA=14, shrinkB=14,
                connectionstyle=f"arc3,rad={-1.6 / (x1 - x0):.3f}" if skip else "arc3"))
    for n in nodes:
        ax.text(*pos[n.name], n.label.replace(" ", "\n", 1), ha="center", va="center",
                fontsize=8, bbox=dict(boxstyle="round,pad=0.35", fc=COLOURS.get(n.kind, "white"),
                                      ec="0.3"))
    ax.set_xlim(-0.6, len(path) - 0.4)
    ax.set_ylim(-1.4, 1.2)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10, loc="left")
