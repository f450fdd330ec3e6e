"""A short coverage-guided fuzzing run of intake (tests/intake/fuzz_intake.py) in every test run.

libFuzzer runs in its own process (it exits the process when done or on a
crash), seeded with a small corpus, for a bounded number of inputs and
seconds. The run must end without a crash, and must really have fuzzed:
libFuzzer's final line reports the inputs it tried.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.intake.fuzz_intake import SEEDS

RUNS = 50_000
SECONDS = 15


def test_libfuzzer_finds_no_input_that_intake_mishandles(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for number, seed in enumerate(SEEDS):
        (corpus / f"seed-{number}").write_bytes(seed)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.intake.fuzz_intake",
            f"-runs={RUNS}",
            f"-max_total_time={SECONDS}",
            "-max_len=4096",
            "-seed=20261124",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        timeout=SECONDS * 6,
        cwd=Path(__file__).parents[2],
    )
    log = done.stderr.decode(errors="replace")
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "oom-")))
    assert done.returncode == 0 and not crashes, log[-4000:]
    tried = re.findall(r"Done (\d+) runs", log)
    assert tried and int(tried[-1]) >= 1000, log[-2000:]
    print(f"\natheris: {tried[-1]} inputs, corpus grew to {len(list(corpus.iterdir()))} files")
