"""The command line both stage benchmarks share: `quality` or `speed [--repeat N]`."""

import argparse
from collections.abc import Callable


def run(doc: str, quality: Callable[[], int], speed: Callable[[int], int]) -> int:
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("what", choices=["quality", "speed"])
    parser.add_argument("--repeat", type=int, default=3, help="speed: repetitions (the median is reported)")
    args = parser.parse_args()
    return quality() if args.what == "quality" else speed(args.repeat)
