"""``python -m bench [--quick] [--out DIR] [--markdown PATH] [--repeats N]``."""

import sys

from bench.run import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m bench"))
