"""The flexrnn command: demo, reproductions of the source studies, sweeps, build facts."""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
from pathlib import Path

# the parts each study's --only accepts (checked before anything runs)
STUDY_PARTS = {
    "training": ("perceptual_decision", "context_integration", "measure_wait_go", "neurogym"),
    "learning": ("force", "full_force", "genetic", "hebbian"),
    "analysis": ("lyapunov", "transition", "trained"),
    "neuromop": ("calibration", "energy", "box", "shapes", "beta_mu", "cartpole"),
    "nmrnn": ("mwg", "element_finder", "multitask", "rank1"),
    "learning-rules": ("decision", "context", "noise"),
    "gain": ("context_integration", "measure_wait_go"),
}


def _int_at_least(minimum: int):
    """An argparse type: a whole number >= ``minimum``, else a message saying what was given."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value

    return parse


_positive_int, _non_negative_int = _int_at_least(1), _int_at_least(0)


def _new_folder(study: str) -> Path:
    """A folder that does not exist yet, named after the study and the time (UTC)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = Path(f"flexrnn-reproduce-{study}-{stamp}")
    folder, k = base, 1
    while folder.exists():
        folder, k = Path(f"{base}-{k}"), k + 1
    return folder


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
    p.add_argument("--n", type=_positive_int, default=400, help="network size")
    p.add_argument("--steps", type=_positive_int, default=3000, help="time steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also run the whole sweep in the NumPy reference and time both (slower)",
    )

    p = sub.add_parser(
        "reproduce",
        help="rerun a study and write its report into a new folder (or --out)",
        description="Rerun a study and write its report, JSON and figures into --out (default: "
        "a new folder flexrnn-reproduce-STUDY-YYYYMMDD-HHMMSS in the current folder, so the "
        "committed reports are never overwritten by accident; they are made with --out docs).",
    )
    p.add_argument(
        "study",
        choices=["training", "learning", "analysis", "neuromop", "nmrnn", "learning-rules", "gain"],
        help="training: BPTT evidence (training.md); learning: FORCE, full-FORCE, genetic and "
        "Hebbian learning (learning.md); analysis: fixed points, Lyapunov exponents, regimes "
        "under gain (analysis.md); neuromop: maximum-occupancy control of RNNs "
        "(reproductions/neuromop.md); nmrnn: the NM-RNN study (reproductions/nmrnn.md); "
        "learning-rules: topology and geometry of networks trained by BPTT, GA, full-FORCE and "
        "Hebbian learning (reproductions/learning_rules.md); gain: performance and attractor "
        "structure under gain modulation (reproductions/gain.md)",
    )
    p.add_argument(
        "--out",
        help="folder of the report and its figures (default: a new folder named after the "
        "study and the time; 'docs' rewrites the committed reports)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--only",
        nargs="+",
        metavar="PART",
        help="run only these parts of the study: "
        + "; ".join(f"{k}: {', '.join(v)}" for k, v in STUDY_PARTS.items()),
    )
    p.add_argument("--quick", action="store_true", help="short runs: a smoke test, not evidence")
    p.add_argument(
        "--redraw",
        action="store_true",
        help="neuromop: train nothing; redraw the figures and rewrite the report of the run in "
        "--out from what it saved (reproductions/neuromop.json and neuromop_figures.npz)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--networks",
        type=_positive_int,
        default=None,
        help="neuromop, learning-rules: networks per condition (default 10 for neuromop; 20 "
        "for learning-rules, 2 with --quick)",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        help="learning, analysis, neuromop, gain: worker processes of the local Dask cluster that "
        "runs the networks (default: one per core)",
    )
    p.add_argument(
        "--scheduler",
        help="a Dask scheduler address (tcp://host:8786) instead of a local cluster, or "
        "'serial' (this process only; the default when Dask is not installed)",
    )
    p.add_argument(
        "--scale",
        type=float,
        help="nmrnn, gain: fraction of the study's numbers of updates (default 1, the full "
        "protocol); learning-rules: fraction of the training budgets (of --quick's with --quick)",
    )
    p.add_argument(
        "--part-scale",
        action="append",
        metavar="PART=FRACTION",
        help="nmrnn: a fraction for one part (mwg, element_finder, multitask, rank1); repeatable",
    )
    p.add_argument(
        "--seeds", type=int, help="nmrnn, gain: networks per condition (default 5; gain: 10)"
    )
    p.add_argument(
        "--contexts",
        metavar="N,N,...",
        help="learning-rules: the N of N-context integration, e.g. 1,2,3,4,5,6 (default 2 with "
        "--quick, else 1-6)",
    )
    p.add_argument(
        "--noise",
        metavar="SIGMA,SIGMA,...",
        help="learning-rules: the input-noise levels of the noise part, e.g. 0.1,0.5,1,2 "
        "(default 0.1,1 with --quick, else 0.1,0.5,1,2)",
    )
    p.add_argument(
        "--noise-contexts",
        metavar="N,N,...",
        help="learning-rules: the N of N-context integration in the noise part (besides the "
        "decision task; default 2 with --quick, else 1-6)",
    )
    p.add_argument(
        "--budget",
        action="append",
        metavar="RULE=N",
        help="learning-rules: the training budget of one rule (bptt updates, genetic "
        "generations, full_force and hebbian batches of 10 trials; each network still stops at "
        "the accuracy criterion); repeatable",
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
    p.add_argument("--workers", type=_positive_int, help="local worker processes (default: cores)")
    p.add_argument("--out", help="sweep folder (default: the spec's `out`, else runs/)")
    p.add_argument(
        "--retries", type=_non_negative_int, help="reruns of a run that raised (default 2)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    sub.add_parser("config", help="what this build contains (JSON)")
    sub.add_parser("cmake-dir", help="folder for CMAKE_PREFIX_PATH / flexrnn_DIR")
    sub.add_parser("include-dir", help="folder of the C++ headers")

    args = parser.parse_args(argv)
    try:
        return _command(parser, args)
    except (ValueError, OSError) as error:
        # bad input found by the library (a spec, a path, an option value): one line, no
        # traceback; the message names the argument
        _fail(parser, args.command, str(error))
    return 0


def _fail(parser: argparse.ArgumentParser, command: str, message: str) -> None:
    """Exit with status 2 and one line naming the command (argparse's own form)."""
    parser.exit(2, f"flexrnn {command}: error: {message}\n")


def _command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import flexrnn

    if args.command == "demo":
        from flexrnn.experiments import demo

        summary = demo(
            out=args.out,
            n=args.n,
            steps=args.steps,
            seed=args.seed,
            show_progress=not args.json,
            baseline=args.baseline,
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

        unknown = [part for part in args.only or [] if part not in STUDY_PARTS[args.study]]
        if unknown:
            parts = ", ".join(STUDY_PARTS[args.study])
            named = ", ".join(map(repr, unknown))
            _fail(
                parser, "reproduce", f"--only: {args.study} has no part {named}; its parts: {parts}"
            )
        if args.redraw:
            if args.study != "neuromop" or args.out is None:
                _fail(parser, "reproduce", "--redraw: only for neuromop, with the --out of a run")
            # the module, not the function of the same name that flexrnn.experiments exports
            module = importlib.import_module("flexrnn.experiments.neuromop_report")
            module.redraw(Path(args.out) / "reproductions")
            print(f"flexrnn reproduce neuromop: redrew {Path(args.out) / 'reproductions'}/")
            return 0
        out = Path(args.out) if args.out is not None else _new_folder(args.study)
        if args.study == "nmrnn":
            return _nmrnn(parser, args, out)
        if args.study == "gain":
            return _gain(parser, args, out)
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
            try:
                extra.update(learning_rules_options(args))
            except ValueError as error:
                _fail(parser, "reproduce", str(error))
        population = {"workers": args.workers, "scheduler": args.scheduler, "runs": args.runs}
        if args.study == "training":
            given = [f"--{k}" for k, v in population.items() if v is not None]
            if given:
                _fail(parser, "reproduce", f"{', '.join(given)}: training runs one network per "
                      "task, no population to spread over workers")  # fmt: skip
        else:
            extra.update(population)
        report(
            out=out,
            seed=args.seed,
            only=args.only,
            progress=not args.no_progress,
            quick=args.quick,
            **extra,
        )
        print(f"flexrnn reproduce {args.study}: report written under {out}/")
    elif args.command == "sweep":
        return _sweep(parser, args)
    elif args.command == "config":
        print(json.dumps(flexrnn.config(), indent=2))
    elif args.command == "cmake-dir":
        print(flexrnn.get_cmake_dir())
    elif args.command == "include-dir":
        print(flexrnn.get_include())
    return 0


def learning_rules_options(args: argparse.Namespace) -> dict:
    """learning-rules' own options, checked (ValueError naming the option)."""
    from flexrnn.experiments.learning_rules_report import with_options

    options = {"contexts": args.contexts, "noise": args.noise,
               "noise_contexts": args.noise_contexts, "budget_scale": args.scale,
               "budgets": args.budget}  # fmt: skip
    try:
        with_options({"budgets": {}}, **options)
    except ValueError as error:
        flags = {**{k: f"--{k.replace('_', '-')}" for k in options}, "budgets": "--budget"}
        flag = next((f for k, f in flags.items() if str(error).startswith(f"{k}:")),
                    "--scale")  # fmt: skip
        raise ValueError(f"{flag}: {str(error).split(': ', 1)[1]}") from None
    return options


def _nmrnn(parser: argparse.ArgumentParser, args: argparse.Namespace, out: Path) -> int:
    from flexrnn.experiments.nmrnn import nmrnn_report

    part_scale = {}
    for item in args.part_scale or []:
        part, sep, value = item.partition("=")
        try:
            part_scale[part] = float(value) if sep else float("nan")
        except ValueError:
            part_scale[part] = float("nan")
        if not sep or part_scale[part] != part_scale[part]:
            parser.error(f"--part-scale: expected PART=FRACTION, got {item!r}")
    nmrnn_report(out=out, seed=args.seed, only=args.only, progress=not args.no_progress,
                 quick=args.quick, scale=args.scale, seeds=args.seeds,
                 part_scale=part_scale or None, workers=args.workers, scheduler=args.scheduler,
                 runs=args.runs)  # fmt: skip
    print(f"flexrnn reproduce nmrnn: report written under {out}/")
    return 0


def _gain(parser: argparse.ArgumentParser, args: argparse.Namespace, out: Path) -> int:
    from flexrnn.experiments.gain import gain_report

    if args.part_scale or args.networks is not None:
        _fail(parser, "reproduce", "--part-scale, --networks: not options of gain")
    if args.seeds is not None and args.seeds < 1:
        _fail(parser, "reproduce", f"--seeds: expected a number >= 1, got {args.seeds}")
    gain_report(out=out, seed=args.seed, only=args.only, progress=not args.no_progress,
                quick=args.quick, scale=args.scale, seeds=args.seeds, workers=args.workers,
                scheduler=args.scheduler, runs=args.runs)  # fmt: skip
    print(f"flexrnn reproduce gain: report written under {out}/reproductions/")
    return 0


def _sweep(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from flexrnn import sweep

    if args.status is not None:
        if args.spec is not None:
            _fail(parser, "sweep", "give SPEC.toml or --status DIR, not both")
        print(sweep.format_status(args.status))
        return 0
    if args.spec is None:
        _fail(parser, "sweep", "give SPEC.toml (or --status DIR)")
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
