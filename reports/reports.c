/* Placeholder translation unit so the reports library exists before its first module. */
#include <stddef.h>
typedef int cks_reports_placeholder;
