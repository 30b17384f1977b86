"""Run one job in this process, without Dask: ``python -m jobs '{"kind": "sweep"}'``.

The spec is a JSON object (the same as POST /api/jobs takes), given as the argument or on
standard input; progress goes to standard error, the result (JSON) to standard output. A
bad spec prints the fields at fault and exits with status 2.
"""

from __future__ import annotations

import json
import sys

from pydantic import ValidationError

from jobs.context import Context
from jobs.kinds import run_local
from jobs.specs import parse_spec


def _progress(report: dict) -> None:
    print(f"{report['progress']:6.1%}  {report['message']}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    text = argv[0] if argv else sys.stdin.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        print(f"the spec is not JSON: {error}", file=sys.stderr)
        return 2
    if not isinstance(data, dict):
        print("the spec must be a JSON object", file=sys.stderr)
        return 2
    try:
        spec = parse_spec(data)
    except ValidationError as error:
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            print(f"{where}: {problem['msg']}", file=sys.stderr)
        return 2
    result = run_local(spec, Context(report=_progress, backend=spec.backend))
    json.dump(result, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
