"""Schemathesis's `st` command, with one CPython 3.11 bug kept out of its way.

CPython before 3.11.8 can raise a spurious SystemError ("AST constructor recursion depth
mismatch", CPython issue gh-106905) from ast.parse. Hypothesis parses source only to
describe a lambda in a strategy's repr; there the error stopped a whole fuzzing pass
although nothing about the API had been found. The description falls back to a plain
one instead; generation and every check are unchanged.
"""

import sys

import hypothesis.internal.lambda_sources as lambda_sources
from schemathesis.cli import schemathesis

_describe = lambda_sources._lambda_description


def _describe_or_fall_back(f, *args, **kwargs):
    try:
        return _describe(f, *args, **kwargs)
    except SystemError:
        return "lambda *_: ..."


lambda_sources._lambda_description = _describe_or_fall_back

if __name__ == "__main__":
    sys.argv[0] = "st"
    sys.exit(schemathesis())
