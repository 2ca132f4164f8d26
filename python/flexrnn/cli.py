"""The flexrnn command: demo, reproductions of the source studies, sweeps, build facts."""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> int:
    from flexrnn._version import __version__

    parser = argparse.ArgumentParser(
        prog="flexrnn",
        description="Rate RNNs for computational neuroscience with a C++ core: a demo, "
        "reproductions of the source studies, populations of runs (sweeps) and build facts.",
    )
    parser.add_argument("--version", action="version", version=f"flexrnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="gain sweep of a random network: summary + figure")
    p.add_argument("--out", default="flexrnn_demo.png", help="figure path (PNG)")
    p.add_argument("--n", type=int, default=400, help="network size")
    p.add_argument("--steps", type=int, default=3000, help="time steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = sub.add_parser("reproduce", help="rerun a study and write its report under docs/")
    p.add_argument(
        "study",
        choices=["training", "learning", "analysis", "neuromop", "learning-rules"],
        help="training: BPTT evidence (training.md); learning: FORCE, full-FORCE, genetic and "
        "Hebbian learning (learning.md); analysis: fixed points, Lyapunov exponents, regimes "
        "under gain (analysis.md); neuromop: maximum-occupancy control of RNNs "
        "(reproductions/neuromop.md); learning-rules: topology and geometry of networks "
        "trained by BPTT, GA, full-FORCE and Hebbian learning (reproductions/learning_rules.md)",
    )
    p.add_argument("--out", default="docs", help="folder of the report and its figures")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="+", help="run only these parts of the study")
    p.add_argument("--quick", action="store_true", help="short runs: a smoke test, not evidence")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--networks",
        type=int,
        default=None,
        help="neuromop, learning-rules: networks per condition (default 10 for neuromop; 20 "
        "for learning-rules, 2 with --quick)",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="learning, analysis, neuromop: worker processes of the local Dask cluster that "
        "runs the networks (default: one per core)",
    )
    p.add_argument(
        "--scheduler",
        help="a Dask scheduler address (tcp://host:8786) instead of a local cluster, or "
        "'serial' (this process only; the default when Dask is not installed)",
    )
    p.add_argument(
        "--runs",
        help="keep each network's result in this sweep folder and resume from it "
        "(default: a temporary folder)",
    )

    p = sub.add_parser(
        "sweep",
        help="run a function over a grid of configurations x seeds on Dask (resumable)",
        description="Run SPEC.toml's function for every configuration of its [grid] and "
        "every seed; finished runs are skipped, so rerunning resumes. Or, with --status DIR, "
        "count the done, failed and pending runs of a sweep folder.",
    )
    p.add_argument("spec", nargs="?", help="sweep spec (TOML): function, seeds, [grid]")
    p.add_argument("--status", metavar="DIR", help="show done / failed / pending of DIR")
    p.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster)")
    p.add_argument("--workers", type=int, help="local worker processes (default: cores)")
    p.add_argument("--out", help="sweep folder (default: the spec's `out`, else runs/)")
    p.add_argument("--retries", type=int, help="reruns of a run that raised (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    sub.add_parser("config", help="what this build contains (JSON)")
    sub.add_parser("cmake-dir", help="folder for CMAKE_PREFIX_PATH / flexrnn_DIR")
    sub.add_parser("include-dir", help="folder of the C++ headers")

    args = parser.parse_args(argv)
    import flexrnn

    if args.command == "demo":
        from flexrnn.experiments import demo

        summary = demo(
            out=args.out, n=args.n, steps=args.steps, seed=args.seed, show_progress=not args.json
        )
        if args.json:
            print(json.dumps(summary, indent=2))
    elif args.command == "reproduce":
        from flexrnn.experiments import (
            analysis_report,
            learning_report,
            neuromop_report,
            training_report,
        )
        from flexrnn.experiments.learning_rules_report import learning_rules_report

        report = {
            "training": training_report,
            "learning": learning_report,
            "analysis": analysis_report,
            "neuromop": neuromop_report,
            "learning-rules": learning_rules_report,
        }[args.study]
        extra = {}
        if args.study == "neuromop":
            extra["networks"] = 10 if args.networks is None else args.networks
        elif args.study == "learning-rules":
            extra["networks"] = args.networks
        population = {"workers": args.workers, "scheduler": args.scheduler, "runs": args.runs}
        if args.study == "training":
            given = [f"--{k}" for k, v in population.items() if v is not None]
            if given:
                parser.error(f"{', '.join(given)}: training runs one network per task, no "
                             "population to spread over workers")  # fmt: skip
        else:
            extra.update(population)
        report(
            out=args.out,
            seed=args.seed,
            only=args.only,
            progress=not args.no_progress,
            quick=args.quick,
            **extra,
        )
    elif args.command == "sweep":
        return _sweep(parser, args)
    elif args.command == "config":
        print(json.dumps(flexrnn.config(), indent=2))
    elif args.command == "cmake-dir":
        print(flexrnn.get_cmake_dir())
    elif args.command == "include-dir":
        print(flexrnn.get_include())
    return 0


def _sweep(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from flexrnn import sweep

    if args.status is not None:
        if args.spec is not None:
            parser.error("sweep: give SPEC.toml or --status DIR, not both")
        print(sweep.format_status(args.status))
        return 0
    if args.spec is None:
        parser.error("sweep: give SPEC.toml (or --status DIR)")
    spec = sweep.read_spec(args.spec)
    if args.out is not None:
        spec["out"] = args.out
    if args.retries is not None:
        spec["retries"] = args.retries
    rows = sweep.run(
        spec["fn"], spec["configs"], spec["seeds"], spec["out"], scheduler=args.scheduler,
        workers=args.workers, retries=spec["retries"], progress=not args.no_progress,
    )  # fmt: skip
    print(sweep.format_status(spec["out"]))
    return 1 if any(r["status"] != "done" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
