/* placeholder */
#include "testutil.h"
static void test_sources__builds(void **state) { (void)state; }
int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sources__builds)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
