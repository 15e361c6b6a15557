"""Runs wasi-testsuite's own runner (unpacked beside this file by scripts/conformance) with
Python 3.11, Debian 12's: the runner asks `"name" in SomeEnum`, which Python accepts from 3.12
on. This gives the enum type that 3.12 behaviour and runs the runner unchanged."""
import enum
import os
import sys

if sys.version_info < (3, 12):
    def _contains(cls, value):
        if isinstance(value, cls):
            return True
        return any(value == member.value for member in cls)
    enum.EnumType.__contains__ = _contains

sys.path.insert(0, os.path.join(os.environ["WASI_TESTSUITE"], "test-runner"))
from wasi_test_runner import __main__  # noqa: E402

sys.exit(__main__.main())
