/* A strict checker of the Prometheus text exposition format 0.0.4, for
 * the tests (test_prom, test_metrics). */
#ifndef CHAND_TESTS_PROM_CHECK_H
#define CHAND_TESTS_PROM_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* Checks text: every line is "# HELP name text", "# TYPE name type" or a
 * sample "name{label="value",...} number"; names match
 * [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*, label
 * values use only the escapes \\ \" \n; each family has at most one HELP
 * and one TYPE, both before its samples, and its samples are contiguous;
 * no series (name and label set) appears twice; text ends with a newline.
 * Returns true, or false with the first problem (and its line) in why. */
bool prom_check(const char *text, char *why, size_t whylen);

/* The value of the sample whose line starts with series (e.g.
 * "chand_up{qmgr=\"QM1\"}"); false if absent. */
bool prom_value(const char *text, const char *series, double *out);

#endif
