#!/bin/sh
# Fails when a source file reaches a header through a path: each library's private headers
# live in <lib>/internal/, which only that library has on its include path, so a quoted
# include naming "internal/..." or "../..." is the one way around the boundary.
# Usage: check_includes.sh SOURCE_DIR (a git checkout).
set -eu
cd "$1"
found=$(git ls-files '*.c' '*.h' | xargs grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*/)?(internal|\.\.)/' || true)
if [ -n "$found" ]; then
    echo "$found"
    echo "check_includes: include headers by name; a library's internal/ headers are its own"
    exit 1
fi
echo "check_includes: no include reaches into another folder"
