"""The ``flexrnn`` command."""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flexrnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="gain sweep of a random network: summary + figure")
    p.add_argument("--out", default="flexrnn_demo.png", help="figure path (PNG)")
    p.add_argument("--n", type=int, default=400, help="network size")
    p.add_argument("--steps", type=int, default=3000, help="time steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

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
    elif args.command == "config":
        print(json.dumps(flexrnn.config(), indent=2))
    elif args.command == "cmake-dir":
        print(flexrnn.get_cmake_dir())
    elif args.command == "include-dir":
        print(flexrnn.get_include())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
