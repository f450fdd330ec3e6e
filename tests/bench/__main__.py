"""``python -m tests.bench``: run the benchmarks and print the table."""

import sys

from tests.bench.run import main

sys.exit(main())
