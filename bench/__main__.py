"""`python -m bench`: list the benchmarks (each is a script in this folder)."""

import pathlib

for path in sorted(pathlib.Path(__file__).parent.glob("*.py")):
    if not path.name.startswith("_"):
        doc = (path.read_text().split('"""')[1].strip().splitlines() or [""])[0]
        print(f"python bench/{path.name:28s} {doc}")
