#!/bin/sh
# Fails when a static library of the project defines a global symbol without the cks_
# prefix (STYLE.md: every function is static or carries the prefix, so the archives can be
# linked beside any other library). Usage: check_symbols.sh NM ARCHIVE...
# Names starting with "__" belong to the compiler (sanitizer and clone helpers) and are
# not checked; target_clones resolvers ("cks_x.resolver") carry the function's name.
set -eu
nm=$1
shift


status=0
for a in "$@"; do
    if [ ! -f "$a" ]; then
        echo "check_symbols: $a: no such archive (build it first)" >&2
        status=1
        continue
    fi
    # global definitions only: code (T, W, i ifuncs) and data (D, B, R, G, S, V, C)
    bad=$("$nm" -g --defined-only "$a" |
        awk 'NF == 3 && $2 ~ /^[TWiDBRGSVC]$/ && $3 !~ /^cks_/ && $3 !~ /^__/ { print $3 }' |
        sort -u)
    for s in $bad; do
        echo "check_symbols: $(basename "$a"): global '$s' lacks the cks_ prefix (make it static or name it cks_...)"
        status=1
    done
    echo "check_symbols: $(basename "$a") checked"
done
exit $status
