#!/usr/bin/env python3
"""Checks the table of tests/README.md, "Guarantees and the tests that back them": every
test it names exists, and every row says whether its tests run real processes.

A test is named in backticks by its full name, `binary::module::test`, as
`cargo test -- --list` lists it under its binary (`lib` for the unit tests in src/).
The listing comes from running `cargo test -- --list`, or from a file saved from it
(stdout and stderr together, so that the "Running" lines say which binary is which):

    python3 .ci/check_test_table.py [--list-file FILE]

Exits 1, naming each problem, if a named test is not in the listing or a row's last
column is not yes, no, partly or (for a row without tests) a dash.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
README = os.path.join(ROOT, "tests", "README.md")
SECTION = "## Guarantees and the tests that back them"
PROCESSES = ("yes", "no", "partly", "—")


def listing(args):
    """The text of `cargo test -- --list`, run now or read from --list-file."""
    if args[:1] == ["--list-file"] and len(args) == 2:
        with open(args[1]) as f:
            return f.read()
    if args:
        sys.exit(__doc__)
    run = subprocess.run(
        ["cargo", "test", "--", "--list"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if run.returncode != 0:
        sys.exit(f"cargo test -- --list failed:\n{run.stdout}")
    return run.stdout


def full_names(text):
    """Every test of the listing as `binary::path::test`."""
    names, binary = set(), None
    for line in text.splitlines():
        line = line.strip()
        running = re.match(r"Running (unittests )?(\S+)", line)
        if running:
            path = running.group(2)
            binary = "lib" if path == "src/lib.rs" else path.split("/")[1].removesuffix(".rs")
        elif line.startswith("Doc-tests"):
            binary = None
        elif binary and line.endswith(": test"):
            names.add(f"{binary}::{line.removesuffix(': test')}")
    return names


def table_rows(readme):
    """The table rows of the section, as lists of cells."""
    text = readme.split(SECTION, 1)[1]
    text = re.split(r"\n## ", text, maxsplit=1)[0]
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"\|\s*-", line):
            cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
            if cells[0] not in ("guarantee", "limit"):
                rows.append(cells)
    return rows


def main():
    names = full_names(listing(sys.argv[1:]))
    binaries = {name.split("::")[0] for name in names}
    if not names:
        sys.exit("no tests in the listing")
    with open(README) as f:
        rows = table_rows(f.read())
    problems, checked = [], 0
    for row in rows:
        if len(row) != 3:
            problems.append(f"not three cells: {row}")
            continue
        claim, tests, processes = row
        if not processes.split(" ")[0] in PROCESSES:
            problems.append(f"{claim!r}: real processes {processes!r} is not one of {PROCESSES}")
        named = [
            name
            for name in re.findall(r"`([a-z_0-9]+(?:::[a-z_0-9]+)+)`", tests)
            if name.split("::")[0] in binaries
        ]
        if not named and not tests.startswith("none"):
            problems.append(f"{claim!r}: names no test and does not say none")
        for name in named:
            checked += 1
            if name not in names:
                problems.append(f"{claim!r}: no test {name}")
    for problem in problems:
        print(problem)
    print(f"{len(rows)} rows, {checked} test names checked, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
