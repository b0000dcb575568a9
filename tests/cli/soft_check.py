"""Soft assertions for the CLI tests: each failed check is printed and counted, and
finish() exits 1 when any failed, so one run reports everything that is wrong."""
import sys

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def finish():
    if failures:
        print("%d failure(s)" % len(failures))
        sys.exit(1)
