/* cks-fixture: writes a tiny checkpoint source of any model family (see fixture.h and
 * cks-fixture --help). Used by CLI tests, benchmarks and the family reference script. */
#include "fixture.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    cks_fx_spec s;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(cks_fx_usage, stdout);
            return 0;
        }
    if (cks_fx_spec_from_args(&s, argc, argv) != 0)
        return 2;
    return cks_fx_write(&s) == 0 ? 0 : 1;
}
