"""Coverage-guided fuzzing of the network-facing parsers with atheris (libFuzzer).

    .venv/bin/python tests/fuzz/atheris_fuzz.py                    # every target, 30 s each
    .venv/bin/python tests/fuzz/atheris_fuzz.py --seconds 300 gwmp  # one target, longer
    .venv/bin/python tests/fuzz/atheris_fuzz.py --runs 100000

Each target runs in its own process (libFuzzer owns the process), seeded with the target's valid
inputs. The table at the end gives the inputs tried per target. A crashing input is copied into
tests/fuzz/regressions/<target>/, where test_fuzz_targets.py replays it on every run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REGRESSIONS = HERE / "regressions"


def run_one(name: str) -> None:
    """Inside the libFuzzer process: instrument the codecs, then fuzz one target."""
    import atheris

    codecs = ["gatewayd.connectors.devices.json_codec", "gatewayd.connectors.devices.xml_codec",
              "gatewayd.connectors.devices.dialect", "gatewayd.connectors.lorawan.gwmp",
              "gatewayd.connectors.lorawan.frames", "gatewayd.connectors.monitor.resiot",
              "gatewayd.connectors.terminals.codec"]
    with atheris.instrument_imports(include=codecs):
        for name in codecs:
            importlib.import_module(name)  # instrumented before first use
    from tests.fuzz.targets import TARGETS

    target = TARGETS[name]
    atheris.Setup([sys.argv[0], *sys.argv[3:]], target)
    atheris.Fuzz()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help="target names (default: all)")
    parser.add_argument("--seconds", type=int, default=30, help="time per target")
    parser.add_argument("--runs", type=int, default=0, help="inputs per target instead of a time budget")
    ns = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.fuzz.targets import TARGETS

    names = ns.targets or sorted(TARGETS)
    results = []
    for name in names:
        corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
        for i, seed in enumerate(TARGETS[name].seeds):
            (corpus / f"seed-{i}").write_bytes(seed)
        artifacts = Path(tempfile.mkdtemp(prefix=f"crash-{name}-"))
        budget = [f"-runs={ns.runs}"] if ns.runs else [f"-max_total_time={ns.seconds}"]
        done = subprocess.run([sys.executable, __file__, "--run-one", name, *budget, "-max_len=4096",
                               f"-artifact_prefix={artifacts}/", "-print_final_stats=1", str(corpus)],
                              cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        output = done.stdout + done.stderr
        runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", output) or re.findall(r"Done (\d+) runs", output)
        crashes = sorted(artifacts.glob("*"))
        for crash in crashes:
            (REGRESSIONS / name).mkdir(parents=True, exist_ok=True)
            shutil.copy(crash, REGRESSIONS / name / crash.name)
        status = "ok" if done.returncode == 0 and not crashes else f"CRASH (exit {done.returncode})"
        results.append((name, int(runs[-1]) if runs else 0, status))
        if crashes or done.returncode != 0:
            print(output[-3000:], file=sys.stderr)
        shutil.rmtree(corpus, ignore_errors=True)
        shutil.rmtree(artifacts, ignore_errors=True)
        print(f"{name:14} {results[-1][1]:>10} inputs  {status}", flush=True)
    print("\ntarget          inputs tried  result")
    for name, runs, status in results:
        print(f"{name:14} {runs:>12}  {status}")
    print(f"total          {sum(r for _, r, _ in results):>12}")
    return 0 if all(status == "ok" for _, _, status in results) else 1


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--run-one":
        run_one(sys.argv[2])
    else:
        sys.exit(main())
