"""Turn the raw results into a Markdown report, acceptance verdicts and a PNG chart."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

from benchmarks.tools import TOOLS

BASELINE = "pickle"


class Target(NamedTuple):
    """``tool``'s ``metric`` on ``case`` must be at most ``limit`` times ``baseline``'s."""

    case: str
    tool: str
    metric: str
    baseline: str
    limit: float


TARGETS = (
    Target("arrays_1gb", "modelsafe", "load_s", "pickle", 0.5),
    Target("arrays_1gb", "modelsafe-mmap", "load_s", "pickle", 0.01),
    Target("arrays_1gb", "modelsafe-mmap-noverify", "load_s", "pickle", 0.01),
    Target("arrays_1gb", "modelsafe", "size_bytes", "pickle", 1.01),
    Target("arrays_1gb", "modelsafe", "save_s", "pickle", 1.2),
    Target("arrays_1gb", "modelsafe-nofsync", "save_s", "pickle", 1.2),
    Target("arrays_1gb", "modelsafe", "save_s", "pickle+fsync", 1.2),
    Target("arrays_1gb", "modelsafe-nofsync", "save_s", "pickle+fsync", 1.2),
    Target("small_arrays_100k", "modelsafe", "load_s", "pickle", 1.5),
    Target("scalars_1m", "modelsafe", "load_s", "pickle", 1.5),
)

_METRIC_NAMES = {"load_s": "load", "save_s": "save", "size_bytes": "size"}


def ratio(rows: dict[str, Any], tool: str, metric: str, baseline: str = BASELINE) -> float | None:
    """``rows[tool][metric] / rows[baseline][metric]``, or None when either is missing."""
    num = rows.get(tool, {}).get(metric)
    den = rows.get(baseline, {}).get(metric)
    if num is None or not den:
        return None
    return float(num) / float(den)


def verdicts(results: dict[str, Any]) -> list[tuple[str, Target, float | None]]:
    """``(PASS|FAIL|n/a, target, measured ratio)`` for every target whose case was run."""
    out = []
    for target in TARGETS:
        if target.case not in results["cases"]:
            continue
        rows = results["cases"][target.case]["rows"]
        value = ratio(rows, target.tool, target.metric, target.baseline)
        status = "n/a" if value is None else ("PASS" if value <= target.limit else "FAIL")
        out.append((status, target, value))
    return out


def _num(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:.3g}{unit}"


def _rss(row: dict[str, Any], which: str) -> str:
    if "memory_error" in row:
        return "error"
    delta, absolute = row.get(f"rss_{which}_delta_mb"), row.get(f"rss_{which}_mb")
    if delta is None or absolute is None:
        return "—"
    return f"{delta:+.0f} ({absolute:.0f})"


def _table(rows: dict[str, Any]) -> list[str]:
    lines = [
        "| tool | save s | load s | load x pickle | save x pickle | file MiB | size x pickle"
        " | peak RSS MiB, touched: Δ (abs) | peak RSS MiB, all read: Δ (abs) | correct |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|:-:|",
    ]
    for tool, row in rows.items():
        # A failure is shown in the first cell it leaves empty: save, else load.
        error = row.get("error") or ""
        save = _num(row["save_s"]) if row.get("save_s") is not None else error
        load = _num(row["load_s"]) if row.get("load_s") is not None else (error or "—")
        if row.get("save_s") is None:
            load = "—"
        size = "—" if row.get("size_bytes") is None else f"{row['size_bytes'] / 2**20:.1f}"
        correct = {True: "✓", False: "✗", None: "—"}[row.get("correct")]
        load_x, save_x, size_x = (
            _num(ratio(rows, tool, metric), "x") for metric in ("load_s", "save_s", "size_bytes")
        )
        lines.append(
            f"| {tool} | {save} | {load} | {load_x} | {save_x} | {size} | {size_x}"
            f" | {_rss(row, 'lazy')} | {_rss(row, 'full')} | {correct} |"
        )
    return lines


def _loadavg(values: list[float] | None) -> str:
    return "unknown" if values is None else " / ".join(f"{v:.2f}" for v in values)


def _machine(results: dict[str, Any]) -> list[str]:
    m, s = results["machine"], results["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    return [
        f"- **CPU**: {m['cpu']}, {m['cores']} cores; **RAM**: {m['ram_gib']} GiB",
        f"- **OS**: {m['os']}; **Python**: {m['python']}",
        f"- **Versions**: {versions}",
        f"- **Temp files on**: {m['temp_filesystem']}",
        f"- **Load average** (1, 5, 15 min) at start {_loadavg(s.get('loadavg_start'))}, at end "
        f"{_loadavg(s.get('loadavg_end'))}: other work on the machine shows up as noise here",
        f"- **Date**: {m['date']}",
    ]


def _targets(results: dict[str, Any]) -> list[str]:
    found = verdicts(results)
    counts = {s: sum(1 for v, _, _ in found if v == s) for s in ("PASS", "FAIL", "n/a")}
    lines = [
        "## Acceptance targets",
        "",
        f"**{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['n/a']} n/a** — arrays_1gb: "
        'modelsafe load ≤ 0.5x pickle, `mmap="r"` load ≤ 0.01x pickle (verify on and off), '
        "file size ≤ 1.01x pickle, save ≤ 1.2x pickle and ≤ 1.2x pickle+fsync (fsync on and "
        "off); small_arrays_100k and scalars_1m: load ≤ 1.5x pickle.",
        "",
    ]
    if results["settings"]["quick"]:
        lines += ["_Quick run: the targets are defined for the full-size cases._", ""]
    for status, t, value in found:
        lines.append(
            f"- {status} — {t.case}: `{t.tool}` {_METRIC_NAMES[t.metric]} = "
            f"{_num(value, 'x')} {t.baseline} (target ≤ {t.limit:g}x)"
        )
    return lines


def markdown(results: dict[str, Any], chart: str) -> str:
    """The full Markdown report."""
    s = results["settings"]
    runs = "1 run" if s["repeat"] == 1 else f"the best of {s['repeat']} runs"
    lines = [
        "# modelsafe vs pickle, joblib and skops: numpy payloads",
        "",
        f"Generated by `python -m benchmarks.run{' --quick' if s['quick'] else ''}`.",
        "",
        f"- **Times**: `time.perf_counter`, {runs} after one warm-up run (excluded: it pays "
        "the tool's lazy imports), in one process per (case, tool) with the tool imported "
        "first, `gc.collect()` and the loaded object deleted between runs. Loads are timed "
        "with the file in the page cache (it is read once before the first load). Save "
        "timings include `fsync` only where the row says so (modelsafe's default save is "
        "durable, so compare it with pickle+fsync too).",
        "- **Peak RSS**: a fresh process imports numpy and the tool and notes its current RSS "
        "(baseline); it loads the file, reads one element of every array and notes the peak "
        '`ru_maxrss` ("touched"), then reads every array fully and notes it again ("all read"). '
        "Δ is the peak minus the baseline; the absolute peak is in parentheses. Pages of a "
        "memory-mapped file count once they are read.",
        "- **Correct**: the loaded object equals the original (`np.array_equal` and dtype "
        "per array, `==` and type per scalar).",
        f"- A single save or load slower than {s['limit_s']:.0f} s is stopped and reported "
        "as a timeout; runs slower than 30 s are not repeated.",
        "",
        *_machine(results),
        "",
    ]
    ran = {tool for data in results["cases"].values() for tool in data["rows"]}
    lines += ["Rows:", ""] + [f"- `{t}`: {TOOLS[t].note}" for t in TOOLS if t in ran] + [""]
    lines += [f"> {note}" for note in results["notes"]]
    for case, data in results["cases"].items():
        lines += ["", f"## {case}", "", data["description"] + ".", "", *_table(data["rows"])]
    lines += ["", *_targets(results), "", f"![save and load time vs pickle]({chart})", ""]
    return "\n".join(lines)


def chart(results: dict[str, Any], path: Path) -> None:
    """Grouped bars per case: save and load time as a multiple of pickle's, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(results["cases"])
    fig, axes = plt.subplots(1, len(cases), figsize=(5.5 * len(cases), 5), squeeze=False)
    for ax, case in zip(axes[0], cases, strict=True):
        rows = results["cases"][case]["rows"]
        tools = list(rows)
        xs = range(len(tools))
        for offset, metric, label in ((-0.2, "save_s", "save"), (0.2, "load_s", "load")):
            values = [ratio(rows, t, metric) or math.nan for t in tools]
            # Bars start at 1x, so faster than pickle points down and slower points up.
            bars = ax.bar(
                [x + offset for x in xs],
                [v - 1 for v in values],
                bottom=1.0,
                width=0.4,
                label=label,
            )
            ax.bar_label(
                bars, labels=["" if math.isnan(v) else _num(v) for v in values], fontsize=6
            )
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(list(xs), tools, rotation=60, ha="right", fontsize=8)
        ax.set_title(case)
        ax.set_ylabel("time / pickle time (log)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
