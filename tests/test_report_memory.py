"""Issue #14: the main job's peak memory is that of the largest single variant plus shared data, not the sum."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from report.study import MEMORY_BUDGET_BYTES

ROOT = Path(__file__).resolve().parents[1]
# the child's peak resident memory, measured by a wrapper whose only child it is (getrusage of children: KiB)
MEASURE = textwrap.dedent("""
    import resource, subprocess, sys
    done = subprocess.run(sys.argv[1:])
    print("peak_kib", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "rc", done.returncode)
""")


@pytest.mark.tf
@pytest.mark.slow
def test_a_small_report_stays_within_the_memory_budget(tmp_path):
    # tflite-int8 alone took 4.1 GB (im2col of 16-shower batches) before it was bounded; 20 showers are generated
    # in one call, so an unbounded TFLite batch shows here. Three variants: kept alive, their memory would add up.
    report = [sys.executable, "-m", "report", "--models", "default", "--variants", "tflite-int8,openvino-int8,bf16",
              "--showers", "20", "--no-speed", "--quiet", "--out", str(tmp_path / "r")]
    done = subprocess.run([sys.executable, "-c", MEASURE, *report], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    words = done.stdout.split()
    peak_kib, rc = int(words[words.index("peak_kib") + 1]), int(words[words.index("rc") + 1])
    assert rc == 0, done.stderr[-3000:]
    assert peak_kib * 1024 < MEMORY_BUDGET_BYTES, f"peak {peak_kib / 2**20:.2f} GiB"
    assert (tmp_path / "r" / "report.html").is_file()
