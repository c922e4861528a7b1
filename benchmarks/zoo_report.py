"""The model-zoo report: Markdown tables, acceptance verdicts over the zoo, a PNG chart.

The zoo's targets are about the whole zoo (geometric means of per-model ratios) and
about every model (worst ratio). A tool that fails on a model, or loads a model that
no longer predicts the same, has no ratio for it: that model is left out of the
geometric mean and the verdict says so by name. A modelsafe failure also fails the
"every model" checks and the completeness check, so a gap can never pass unseen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.report import _machine, _num
from benchmarks.tools import TOOLS

BASELINE = "pickle"
MS, MMAP, SKOPS = "modelsafe", "modelsafe-mmap", "skops"
# Rows for the comparisons on the same work, which are not the targets.
CHECKED, NOVERIFY = "pickle+hash+fsync", "modelsafe-mmap-noverify"


def usable(row: dict[str, Any] | None, metric: str) -> bool:
    """Whether ``row`` has ``metric`` from a run that loaded a model with the exact output."""
    return (
        row is not None
        and not row.get("error")
        and row.get("correct") is True
        and row.get(metric) is not None
    )


def why_missing(tool: str, row: dict[str, Any] | None, metric: str) -> str:
    """A few words on why a row gives no ``metric``; :func:`failures` has the details."""
    if row is None:
        return f"{tool} not run"
    if row.get("error"):
        return f"{tool} failed"
    if row.get("correct") is False:
        return f"{tool} output differs"
    if metric.startswith("rss_") and row.get("memory_error"):
        return f"{tool} memory child failed"
    return f"{tool} has no {metric}"


def failures(results: dict[str, Any]) -> list[str]:
    """Every failed build, failed row and wrong output of the run, with its message."""
    out = []
    for model, data in results["models"].items():
        if data.get("build", {}).get("error"):
            out.append(f"{model} (build): {data['build']['error']}")
        for tool, row in data["rows"].items():
            if row.get("error"):
                out.append(f"{model} / {tool}: {row['error']}")
            elif row.get("correct") is False:
                detail = row.get("check_error", "predict_proba differs from the original's")
                out.append(f"{model} / {tool}: wrong output: {detail}")
            if row.get("memory_error"):
                out.append(f"{model} / {tool} (memory child): {row['memory_error']}")
    return out


@dataclass(frozen=True)
class Ratio:
    """Per-model ``num / den`` of one metric, and why a model has none."""

    values: dict[str, float]
    missing: dict[str, str]  # model -> reason
    blame_num: set[str]  # models whose numerator row failed (modelsafe's own failures)


# Peak-RSS deltas under 1 MiB are below the noise of the allocator; counting them as 1 MiB
# keeps a ratio of two tiny deltas (or of a zero one) finite and meaningful.
_FLOOR = {"rss_load_delta_mb": 1.0, "rss_predict_delta_mb": 1.0}


def ratios(results: dict[str, Any], num: str, den: str, metric: str) -> Ratio:
    """``rows[num][metric] / rows[den][metric]`` for every model where both are usable."""
    floor = _FLOOR.get(metric, 0.0)
    values: dict[str, float] = {}
    missing: dict[str, str] = {}
    blame: set[str] = set()
    for model, data in results["models"].items():
        rows = data["rows"]
        if not rows:
            missing[model] = "not measured (build failed)"
            continue
        a, b = rows.get(num), rows.get(den)
        if not usable(a, metric):
            missing[model] = why_missing(num, a, metric)
            if a is not None:  # a row left out of the run is no failure of the tool
                blame.add(model)
        elif not usable(b, metric):
            missing[model] = why_missing(den, b, metric)
        elif max(float(b[metric]), floor) <= 0:
            missing[model] = f"{den}: {metric} is {b[metric]}, no ratio"
        else:
            values[model] = max(float(a[metric]), floor) / max(float(b[metric]), floor)
    return Ratio(values, missing, blame)


def geomean(values: list[float]) -> float | None:
    """Geometric mean, or None for an empty list (or one holding a zero)."""
    if not values or min(values) <= 0:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


@dataclass(frozen=True)
class Verdict:
    """One acceptance check: PASS, FAIL or n/a, what was checked, what was measured."""

    status: str
    check: str
    measured: str
    notes: list[str]


def _x(value: float) -> str:
    """A ratio in a verdict: 4 digits, so a 1.002x that fails a ≤ 1.0 target does not read 1x."""
    return f"{value:.4g}x"


def _left_out(r: Ratio, models: list[str] | None = None) -> list[str]:
    chosen = r.missing if models is None else {m: r.missing[m] for m in models}
    if not chosen:
        return []
    return ["left out: " + ", ".join(f"{m} ({why})" for m, why in chosen.items())]


def _geo_check(r: Ratio, check: str, limit: float, at_least: bool = False) -> Verdict:
    """A geometric mean over the models that have a ratio, against ``limit``."""
    value = geomean(list(r.values.values()))
    if value is None:
        return Verdict("n/a", check, "no model measured", _left_out(r))
    ok = value >= limit if at_least else value <= limit
    over = f"over {len(r.values)} of {len(r.values) + len(r.missing)} models"
    return Verdict("PASS" if ok else "FAIL", check, f"{_x(value)} ({over})", _left_out(r))


def _every_check(r: Ratio, check: str, limit: float) -> Verdict:
    """Every model at most ``limit``; a model modelsafe failed on fails the check."""
    if not r.values and not r.blame_num:
        return Verdict("n/a", check, "no model measured", _left_out(r))
    worst = max(r.values, key=r.values.__getitem__) if r.values else None
    over = [f"{m} {_x(v)}" for m, v in r.values.items() if v > limit]
    failed = [m for m in r.missing if m in r.blame_num]
    status = "FAIL" if over or failed else "PASS"
    measured = "no value" if worst is None else f"worst {_x(r.values[worst])} ({worst})"
    notes = [f"above the target: {', '.join(over)}"] if over else []
    if failed:
        notes.append("counted as failures: " + ", ".join(f"{m} ({r.missing[m]})" for m in failed))
    notes += _left_out(r, [m for m in r.missing if m not in r.blame_num])
    return Verdict(status, check, measured, notes)


def _complete_check(results: dict[str, Any], tools: tuple[str, ...]) -> Verdict:
    """Every model is saved, loaded and predicts bit-for-bit with every modelsafe row."""
    check = f"{' and '.join(f'`{t}`' for t in tools)} load every model with the exact output"
    problems, seen = [], 0
    for model, data in results["models"].items():
        if not data["rows"]:
            problems.append(f"{model} (not measured: the build failed)")
            continue
        for tool in tools:
            if (row := data["rows"].get(tool)) is None:
                continue
            seen += 1
            if not usable(row, "load_s"):
                problems.append(f"{model} ({why_missing(tool, row, 'load_s')})")
    if not seen:
        return Verdict("n/a", check, "no modelsafe row run", [])
    notes = ["failed: " + ", ".join(problems)] if problems else []
    return Verdict("FAIL" if problems else "PASS", check, f"{len(problems)} failure(s)", notes)


def verdicts(results: dict[str, Any]) -> list[Verdict]:
    """The zoo's acceptance checks, in the order of the issue."""
    load = ratios(results, MS, BASELINE, "load_s")
    skops = ratios(results, SKOPS, MS, "load_s")
    return [
        _geo_check(load, "`modelsafe` load ≤ 1.0x pickle, geometric mean over the zoo", 1.0),
        _every_check(load, "`modelsafe` load ≤ 2.0x pickle for every model", 2.0),
        _geo_check(
            ratios(results, MMAP, BASELINE, "load_s"),
            '`modelsafe-mmap` (mmap="r") load ≤ 0.5x pickle, geometric mean',
            0.5,
        ),
        _geo_check(skops, "skops load ÷ `modelsafe` load ≥ 10x, geometric mean", 10.0, True),
        _every_check(
            ratios(results, MS, BASELINE, "size_bytes"),
            "`modelsafe` file size ≤ 1.1x pickle for every model",
            1.1,
        ),
        _geo_check(
            ratios(results, MS, BASELINE, "save_s"),
            "`modelsafe` save ≤ 1.5x pickle, geometric mean",
            1.5,
        ),
        _every_check(
            ratios(results, MS, BASELINE, "rss_predict_delta_mb"),
            "`modelsafe` peak RSS of a fresh load + predict ≤ pickle's for every model",
            1.0,
        ),
        _complete_check(results, (MS, MMAP)),
    ]


def _ran(results: dict[str, Any], tool: str) -> bool:
    return any(tool in data["rows"] for data in results["models"].values())


def same_work(results: dict[str, Any]) -> list[Verdict]:
    """The load and save targets restated against tools doing the work modelsafe does by
    default: not the issue's targets, which compare with pickle, which neither verifies
    nor fsyncs. Empty when the run had neither row."""
    if not (_ran(results, CHECKED) or _ran(results, NOVERIFY)):
        return []
    load = ratios(results, MS, CHECKED, "load_s")
    return [
        _geo_check(load, f"`modelsafe` load ≤ 1.0x `{CHECKED}`, geometric mean", 1.0),
        _every_check(load, f"`modelsafe` load ≤ 2.0x `{CHECKED}` for every model", 2.0),
        _geo_check(
            ratios(results, NOVERIFY, BASELINE, "load_s"),
            f'`{NOVERIFY}` (mmap="r", verify=False) load ≤ 0.5x pickle, geometric mean',
            0.5,
        ),
        _geo_check(
            ratios(results, MS, CHECKED, "save_s"),
            f"`modelsafe` save ≤ 1.5x `{CHECKED}`, geometric mean",
            1.5,
        ),
    ]


def acceptance_lines(results: dict[str, Any]) -> list[str]:
    """The failures, then the verdicts, as plain lines for the terminal."""
    lines = [f"failed: {line}" for line in failures(results)]
    for v in verdicts(results):
        lines.append(f"{v.status} — {v.check}: {v.measured}")
        lines += [f"    {note}" for note in v.notes]
    if same := same_work(results):
        lines.append("on the same work (not the issue's targets):")
        for v in same:
            lines.append(f"  {v.status} — {v.check}: {v.measured}")
            lines += [f"      {note}" for note in v.notes]
    return lines


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"  # the zoo has 20 KiB and 130 MiB files


def _rss(row: dict[str, Any], which: str) -> str:
    if "memory_error" in row:
        return "error"
    delta, absolute = row.get(f"rss_{which}_delta_mb"), row.get(f"rss_{which}_mb")
    if delta is None or absolute is None:
        return "—"
    return f"{delta:+.0f} ({absolute:.0f})"


def _correct(row: dict[str, Any]) -> str:
    if row.get("correct") is False:
        return "✗ " + _cell(row.get("check_error", "output differs"))
    return "✓" if row.get("correct") else "—"


def _row_ratio(rows: dict[str, Any], tool: str, metric: str) -> str:
    """The ratio whenever both numbers exist (a row that saved but failed to load still
    shows its save time and size; the verdicts use only rows that loaded correctly)."""
    num, den = rows.get(tool, {}).get(metric), rows.get(BASELINE, {}).get(metric)
    if num is None or den is None:
        return "—"
    floor = _FLOOR.get(metric, 0.0)
    return "—" if max(den, floor) <= 0 else _num(max(num, floor) / max(den, floor), "x")


def _model_table(rows: dict[str, Any]) -> list[str]:
    lines = [
        "| tool | save s | load s | load x pickle | save x pickle | file MiB | size x pickle"
        " | peak RSS MiB, loaded: Δ (abs) | peak RSS MiB, loaded + predicted: Δ (abs)"
        " | RSS x pickle | correct |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|",
    ]
    for tool, row in rows.items():
        # A failure is shown in the first cell it leaves empty: save, else load.
        error = _cell(row.get("error") or "")
        save = _num(row.get("save_s")) if row.get("save_s") is not None else error
        load = _num(row.get("load_s")) if row.get("load_s") is not None else (error or "—")
        if row.get("save_s") is None:
            load = "—"
        size = None if row.get("size_bytes") is None else row["size_bytes"] / 2**20
        lines.append(
            f"| {tool} | {save} | {load} | {_row_ratio(rows, tool, 'load_s')}"
            f" | {_row_ratio(rows, tool, 'save_s')} | {_mib(size)}"
            f" | {_row_ratio(rows, tool, 'size_bytes')} | {_rss(row, 'load')}"
            f" | {_rss(row, 'predict')} | {_row_ratio(rows, tool, 'rss_predict_delta_mb')}"
            f" | {_correct(row)} |"
        )
    return lines


def _build_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| model | build s (data + fit) | reference output | pickle MiB | iterations run |",
        "|---|--:|---|--:|--:|",
    ]
    for model, data in results["models"].items():
        b = data.get("build", {})
        if b.get("error"):
            lines.append(f"| {model} | {_cell(b['error'])} | — | — | — |")
            continue
        n_iter = "—" if b.get("n_iter") is None else str(b["n_iter"])
        lines.append(
            f"| {model} | {b['build_s']:.1f} | `{b['output']}` "
            f"| {_mib(b['pickle_bytes'] / 2**20)} | {n_iter} |"
        )
    return lines


_COMPACT: tuple[tuple[str, str, str, str], ...] = (
    ("load x pickle", MS, BASELINE, "load_s"),
    ('mmap="r" load x pickle', MMAP, BASELINE, "load_s"),
    ("skops load ÷ modelsafe", SKOPS, MS, "load_s"),
    ("size x pickle", MS, BASELINE, "size_bytes"),
    ("save x pickle", MS, BASELINE, "save_s"),
    ("peak RSS Δ x pickle", MS, BASELINE, "rss_predict_delta_mb"),
)


_SAME_WORK: tuple[tuple[str, str, str, str], ...] = (
    (f"{CHECKED} load x pickle", CHECKED, BASELINE, "load_s"),
    (f"load x {CHECKED}", MS, CHECKED, "load_s"),
    ('mmap="r", verify=False load x pickle', NOVERIFY, BASELINE, "load_s"),
    (f"{CHECKED} save x pickle", CHECKED, BASELINE, "save_s"),
    (f"save x {CHECKED}", MS, CHECKED, "save_s"),
)


def _compact_table(
    results: dict[str, Any], spec: tuple[tuple[str, str, str, str], ...] = _COMPACT
) -> list[str]:
    """Per-model ratios behind the verdicts, with the geometric mean underneath."""
    columns = [(title, ratios(results, num, den, metric)) for title, num, den, metric in spec]
    lines = [
        "| model | " + " | ".join(title for title, _ in columns) + " |",
        "|---|" + "--:|" * len(columns),
    ]
    for model in results["models"]:
        cells = []
        for _, r in columns:
            if model in r.values:
                cells.append(f"{r.values[model]:.3g}x")
            else:  # "err" points at the failures list; "—" is a row that was not run
                cells.append("—" if r.missing.get(model, "").endswith("not run") else "err")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    means = [geomean(list(r.values.values())) for _, r in columns]
    lines.append("| **geomean** | " + " | ".join(_num(m, "x") for m in means) + " |")
    return lines


def _duration(s: dict[str, Any], results: dict[str, Any]) -> str:
    total = s.get("duration_s")
    builds = sum(d.get("build", {}).get("child_s") or 0.0 for d in results["models"].values())
    if total is None:
        return "unknown"
    return f"{total / 60:.1f} min, of which {builds / 60:.1f} min building the models"


def _code_cost(results: dict[str, Any]) -> str:
    """What importing modelsafe's load code cost the memory children, as a phrase."""
    costs = [
        row["rss_code_mb"]
        for data in results["models"].values()
        for name, row in data["rows"].items()
        if name == "modelsafe" and row.get("rss_code_mb") is not None
    ]
    if not costs:
        return ""
    return f"; RSS +{min(costs):.1f} to +{max(costs):.1f} MiB, not in Δ"


def markdown(results: dict[str, Any], chart: str) -> str:
    """The full Markdown report of a models run."""
    s = results["settings"]
    runs = "1 run" if s["repeat"] == 1 else f"the best of {s['repeat']} or more runs"
    second = s.get("second_child_below_s")
    lines = [
        "# modelsafe vs pickle, joblib, skops and cloudpickle: the model zoo",
        "",
        f"Generated by `python -m benchmarks.run --suite models{' --quick' if s['quick'] else ''}`"
        f" in {_duration(s, results)}.",
        "",
        "- **Models**: each is fitted once per run from generated data (nothing downloaded) "
        "in a builder child, pickled into the run's temporary directory and saved once with "
        "every tool; the measuring children unpickle that cache instead of refitting. Build "
        "times are below.",
        "- **Peak RSS** (fresh process): a new child imports numpy, the model's library and "
        "the tool (with the code its load runs: for modelsafe, which imports that on its "
        "first load, BLAKE3 and the handler modules of the libraries of the file's types"
        + _code_cost(results)
        + "), unpickles the held-out batch, resets its peak (`/proc/self/clear_refs`) "
        "and notes its RSS (baseline); it loads the tool's file and notes the peak (`VmHWM`, "
        '"loaded"), then predicts on the batch and notes it again ("loaded + predicted"). Δ '
        "is the peak minus the baseline, the absolute peak is in parentheses; the RSS target "
        "compares the loaded + predicted Δ (a Δ under 1 MiB counts as 1 MiB). Pages of a "
        "memory-mapped file count once read.",
        "- **Correct**: in that fresh process, `predict_proba` of the loaded model on a fixed "
        "held-out batch of 1,000 rows equals the original's bit for bit (dtype, shape, values).",
        f"- **Times**: then, in the same child, `time.perf_counter`, {runs} after one warm-up "
        "run (excluded), with `gc.collect()` between runs; fast operations are repeated until "
        f"{s['min_total_s']:g} s of runs, a run slower than {s['slow_run_s']:g} s is not "
        "repeated"
        + (
            f", and a pair whose save and load each take under {second:g} s is timed in a "
            "second child too, the better kept"
            if second
            else ""
        )
        + ". Loads are timed with the file in the page cache. modelsafe's save is durable "
        "(`fsync`); the other tools' saves are not.",
        f"- A single save or load slower than {s['limit_s']:.0f} s is stopped and reported "
        "as a timeout.",
        "",
        *_machine(results),
        "",
    ]
    ran = {tool for data in results["models"].values() for tool in data["rows"]}
    lines += ["Rows:", ""] + [f"- `{t}`: {TOOLS[t].note}" for t in TOOLS if t in ran] + [""]
    lines += [f"> {note}" for note in results["notes"]]
    lines += ["", "## Builds", "", *_build_table(results)]
    lines += ["", "## Ratios per model", "", *_compact_table(results)]
    for model, data in results["models"].items():
        lines += ["", f"## {model}", "", data["description"] + "."]
        if data["rows"]:
            lines += ["", *_model_table(data["rows"])]
    found = verdicts(results)
    counts = {x: sum(1 for v in found if v.status == x) for x in ("PASS", "FAIL", "n/a")}
    lines += [
        "",
        "## Acceptance targets",
        "",
        f"**{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['n/a']} n/a.** A tool that "
        "fails on a model, or whose loaded model predicts differently, is left out of that "
        "geometric mean, named under the verdict; a modelsafe failure fails the "
        '"every model" checks and the last one.',
        "",
    ]
    if s["quick"]:
        lines += ["_Quick run: the targets are defined for the full-size models._", ""]
    if failed := failures(results):
        lines += ["Failures, left out of the ratios:", ""]
        lines += [f"- {_cell(line)}" for line in failed] + ["", "Verdicts:", ""]
    for v in found:
        lines.append(f"- {v.status} — {v.check}: {v.measured}")
        lines += [f"  - {_cell(note)}" for note in v.notes]
    if same := same_work(results):
        lines += [
            "",
            "## On the same work (not the issue's targets)",
            "",
            f"pickle neither verifies nor makes its file durable; modelsafe's defaults do both. "
            f"`{CHECKED}` is pickle doing that work without the safety: the load and save "
            f'targets restated against it, and the `mmap="r"` one with `verify=False`. The '
            f"first and fourth columns are what the work alone costs pickle.",
            "",
            *_compact_table(results, _SAME_WORK),
            "",
        ]
        for v in same:
            lines.append(f"- {v.status} — {v.check}: {v.measured}")
            lines += [f"  - {_cell(note)}" for note in v.notes]
    lines += ["", f"![load, save and peak RSS vs pickle per model]({chart})", ""]
    return "\n".join(lines)


def chart(results: dict[str, Any], path: Path) -> None:
    """Load time, save time and peak RSS Δ as a multiple of pickle's, per model, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results["models"])
    tools = [
        t
        for t in TOOLS
        if t != BASELINE and any(t in d["rows"] for d in results["models"].values())
    ]
    panels: list[tuple[str, str]] = [
        ("load_s", "load time / pickle"),
        ("save_s", "save time / pickle"),
        ("rss_predict_delta_mb", "peak RSS Δ, load + predict / pickle"),
    ]
    fig, axes = plt.subplots(3, 1, figsize=(max(8.0, 1.3 * len(models)), 12), squeeze=False)
    width = 0.8 / max(1, len(tools))
    for ax, (metric, label) in zip(axes[:, 0], panels, strict=True):
        for k, tool in enumerate(tools):
            found = ratios(results, tool, BASELINE, metric).values
            heights = [found.get(m, math.nan) for m in models]
            xs = [i - 0.4 + width * (k + 0.5) for i in range(len(models))]
            # Bars start at 1x, so faster than pickle points down and slower points up.
            ax.bar(xs, [h - 1 for h in heights], bottom=1.0, width=width, label=tool)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(models)), models, fontsize=8)
        ax.set_ylabel(label + " (log)")
        ax.legend(fontsize=7, ncol=min(3, len(tools)))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
