"""Markdown rendering of a run's report: the tables every section shares and the page itself.

:func:`render_markdown` writes docs/benchmarks.md from a report (a live run's or an earlier
run's JSON: ``python -m bench --from-json``): the header (command, machine, threads,
versions, timing rules), the summary of every section's targets, the hardware limit, then
each section's own ``render``. Sections build their tables with :func:`render_timing_table`,
:func:`render_cpu_share` and :func:`render_targets`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

from bench.harness import BUSY, DTYPES, REPO, Context, Section, Target, fmt_ratio, fmt_time

# display names of the implementations targets compare against (sections add their own)
IMPL_NAMES = {"flexrnn": "C++", "numpy": "NumPy", "torch": "PyTorch eager"}


def render_hardware(hw: dict[str, Any]) -> list[str]:
    lines = [
        "## Hardware limit: GEMM rate",
        "",
        "NumPy's BLAS on this machine (median of several products after a warm-up). The "
        "square product is the limit quoted below; the step-shaped product is one step's "
        "recurrent term `r @ W.T` of the large workload.",
        "",
        "| dtype | 2048×2048 @ 2048×2048 | (64×1024) @ (1024×1024)ᵀ |",
        "|---|---|---|",
    ]
    for dt in DTYPES:
        sq, st = hw["gemm_square"][dt], hw["gemm_step"][dt]
        lines.append(f"| {dt} | {sq['gflops']:.1f} GFLOP/s | {st['gflops']:.1f} GFLOP/s |")
    others = hw.get("cpu_share", {}).get("others")
    if others is not None:
        lines += [
            "",
            f"CPU taken by other processes meanwhile: {100 * others:.0f}%"
            + (" — **the machine was busy; the limit is underestimated**" if others > BUSY else "")
            + ".",
        ]
    return lines + [""]


def render_timing_table(
    by_dtype: dict[str, dict[str, Any]],
    check_text: Callable[[dict[str, Any]], str],
    time_header: str = "median time",
    check_header: str = "output check",
) -> list[str]:
    """The timings of one workload, a row per implementation and dtype: median time, speed-up
    of C++ (from :func:`compare`), ``check_text(check entry)`` and the samples taken."""
    lines = [
        f"| implementation | dtype | {time_header} | speed-up of C++ | {check_header} | samples |",
        "|---|---|---|---|---|---|",
    ]
    for dt, d in by_dtype.items():
        for key, tm in d["timings"].items():
            if key == "flexrnn":
                ratio, chk = "1 (reference)", "–"
            else:
                ratio, chk = fmt_ratio(d["speedup_of_cpp"][key]), check_text(d["check"][key])
            lines.append(
                f"| {tm['label']} | {dt} | {fmt_time(tm['median_s'])} | {ratio} | {chk} "
                f"| {tm['repeats']} × {tm['number']} |"
            )
    return lines + [""]


def render_cpu_share(by_dtype: dict[str, dict[str, Any]]) -> list[str]:
    """The line saying how much CPU other processes took while a workload was timed."""
    loads = {dt: d.get("cpu_share", {}).get("others") for dt, d in by_dtype.items()}
    retried = {dt: len(d.get("discarded_busy_attempts", [])) for dt, d in by_dtype.items()}
    if all(v is None for v in loads.values()):
        return []
    return [
        "CPU taken by other processes while timing: "
        + ", ".join(f"{dt} {100 * v:.0f}%" for dt, v in loads.items() if v is not None)
        + (
            " — **the machine was busy; these ratios are unreliable**"
            if any(v is not None and v > BUSY for v in loads.values())
            else ""
        )
        + "".join(
            f"; {dt}: least busy of {k + 1} attempts kept (all in the JSON)"
            for dt, k in retried.items()
            if k
        )
        + ".",
        "",
    ]


def render_targets(
    targets: list[dict[str, Any]], impl_names: Mapping[str, str] = IMPL_NAMES
) -> list[str]:
    """A workload's targets as a table: speed-ups (``min_speedup``) or memory (``max_ratio``);
    ``impl_names`` names the baselines."""
    if not targets:
        return []
    lines = ["| target | dtype | measured | met |", "|---|---|---|---|"]
    for t in targets:
        met = "–" if t["met"] is None else ("**yes**" if t["met"] else "**no**")
        if t.get("busy"):
            met += " (busy machine)"
        if t.get("kind") == "memory":
            what = t["target_text"]
            measured = "not measured" if t["measured"] is None else f"{t['measured']:.2f}×"
        else:
            what = Target(t["baseline"], t["min_speedup"]).text(
                impl_names.get(t["baseline"], t["baseline"])
            )
            measured = "not measured" if t["measured"] is None else fmt_ratio(t["measured"])
        lines.append(f"| {what} | {t['dtype']} | {measured} | {met} |")
    return lines + [""]


def _load(env: dict[str, Any], key: str) -> str:
    value = env.get(key)
    return f"{value[0]:.2f}" if value else "?"


def timing_line(meta: dict[str, Any], json_ref: str) -> str:
    budget = meta.get("budget_s")
    return (
        f"- timing: median of {meta['repeats']} samples per implementation after a checked "
        "warm-up run"
        + (
            f" (fewer if a comparison would overrun its {budget:g} s budget on a loaded machine)"
            if budget
            else ""
        )
        + ", implementations interleaved (order rotated each repeat), `time.perf_counter`; a "
        f"sample of a fast call averages back-to-back calls lasting ≥ "
        f"{meta['min_sample_s'] * 1e3:g} ms (*samples* column: samples × calls per sample). "
        f"Raw timings: `{json_ref}`"
        + (" (git-ignored)" if json_ref.startswith("bench/results/") else "")
    )


def render_markdown(
    report: dict[str, Any], ctx: Context, json_path: Path, sections: Sequence[Section]
) -> str:
    """The whole page of ``report`` (a run's JSON): header, summary of targets, hardware
    limit, then every section of ``sections`` (in that order) the report holds."""
    lines = render_header(report, ctx, json_path)
    targets = [t for s in report["sections"].values() for t in s.get("targets", [])]
    if targets:
        lines += render_summary(targets, sections)
    lines += render_hardware(report["hardware"])
    for section in sections:
        if section.name in report["sections"]:
            lines += [f"## {section.title}", ""]
            lines += section.render(report["sections"][section.name], ctx)
    return "\n".join(lines).rstrip() + "\n"


def render_header(report: dict[str, Any], ctx: Context, json_path: Path) -> list[str]:
    """Title, the command, and the run's date, machine, threads, versions and timing rules."""
    env, meta = report["environment"], report["meta"]
    cfg = env["flexrnn_config"]
    blas = env.get("numpy_openblas") or {}
    try:
        json_ref = json_path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        json_ref = str(json_path)
    return [
        "# Benchmarks",
        "",
        "Generated by `bench/run.py`; do not edit by hand. Produced by:",
        "",
        "```",
        meta["command"],
        "```",
        "",
        f"- date: {meta['timestamp']}"
        + (
            " — **quick smoke run: too few repeats and a shorter large workload; not for quoting**"
            if ctx.quick
            else ""
        ),
        f"- machine: {env['cpu_model']}, {env['logical_cpus']} logical CPUs "
        f"({env['cpus_available']} available), {env['platform']}; 1-min load average "
        f"{_load(env, 'loadavg_start')} at start, {_load(env, 'loadavg_end')} at end (shared "
        "machine: ratios from one run are what counts, absolute times are indicative)",
        f"- threads: flexrnn {env['flexrnn_threads']} (OpenMP), PyTorch "
        f"{env['torch_threads'] if env['torch_threads'] is not None else '–'} "
        f"(`torch.set_num_threads`), NumPy's OpenBLAS {blas.get('threads', '?')}; flexrnn's "
        "idle OpenMP threads: `OMP_WAIT_POLICY="
        f"{env.get('env_vars', {}).get('OMP_WAIT_POLICY') or 'unset'}` (flexrnn's default: "
        "passive, they sleep); PyTorch loaded before flexrnn, with its own default",
        f"- flexrnn {env['flexrnn_version']} (`flexrnn.config()`: "
        + ", ".join(f"{k}={v}" for k, v in cfg.items())
        + ")",
        f"- NumPy {env['numpy_version']} ({blas.get('config', 'BLAS unknown').strip()}), "
        f"PyTorch {env['torch_version'] or 'not installed'}, Python {env['python']}",
        f"- git: {env['git'].get('commit') or '?'}"
        + (
            f" with {env['git']['modified_files']} modified/untracked files"
            if env["git"].get("modified_files")
            else ""
        ),
        timing_line(meta, json_ref),
        "",
    ]


def render_summary(targets: list[dict[str, Any]], sections: Sequence[Section]) -> list[str]:
    """Targets met, missed and not measured (all sections'), and the output checks."""
    names = {**IMPL_NAMES, **{k: v for s in sections for k, v in s.impl_names.items()}}
    check_text = {s.name: s.check_text for s in sections if s.check_text}
    met = [t for t in targets if t["met"]]
    missed = [t for t in targets if t["met"] is False]
    unmeasured = [t for t in targets if t["met"] is None]

    def name(t):
        if t.get("kind") == "memory":
            return (
                f"{t['title'].lower()} {t['dtype']} peak memory "
                f"({'–' if t['measured'] is None else format(t['measured'], '.2f')}× "
                f"{t['relative_to']} for ≤ {t['max_ratio']:g}×)"
            )
        base = names.get(t["baseline"], t["baseline"])
        return (
            f"{t['title'].lower()} {t['dtype']} vs {base} ({fmt_ratio(t['measured'])} "
            f"for ≥ {t['min_speedup']:g}×{', busy machine' if t.get('busy') else ''})"
        )

    lines = ["## Summary", "", f"**Targets met: {len(met)} of {len(targets)}.**", ""]
    busy = [t for t in targets if t.get("busy")]
    if busy:
        lines.append(
            f"- **{len(busy)} of these were measured while other processes took "
            f"over {BUSY:.0%} of the CPUs** (marked *busy machine*): their ratios "
            "are unreliable; rerun on an idle machine"
        )
    if met:
        lines.append("- met: " + "; ".join(name(t) for t in met))
    if missed:
        lines.append("- missed: " + "; ".join(name(t) for t in missed))
    if unmeasured:
        lines.append(
            "- not measured (baseline not installed, or skipped): "
            + "; ".join(
                f"{t['title'].lower()} {t['dtype']} "
                + (
                    "peak memory"
                    if t.get("kind") == "memory"
                    else f"vs {names.get(t['baseline'], t['baseline'])}"
                )
                for t in unmeasured
            )
        )
    bad = [t for t in targets if t.get("outputs_agree") is False]
    if bad:
        lines.append("- **outputs differ** for: " + "; ".join(name(t) for t in bad))
    else:
        checked = dict.fromkeys(t["section"] for t in targets if t.get("kind") != "memory")
        lines += [f"- {check_text[sec]}" for sec in checked if sec in check_text]
    return lines + [""]
