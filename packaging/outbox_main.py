"""The bundle's entry point: the same ``outbox`` program a Python install runs."""

import sys

from relay.cli import main

if __name__ == "__main__":
    sys.exit(main())
