/* What the bank answered for one action, read from its statement's rows: one row whose column
   `outcome` is a JSON object {"outcome": "done"|"refused", "replayed": bool, "reason"?: text,
   ...what it changed}. Anything else (no row, two rows, no such column, not that form) is the
   agent file's mistake or the bank's, and the action is FAILED with the reason. Pure, no I/O. */
#ifndef EXECUTOR_OUTCOME_H
#define EXECUTOR_OUTCOME_H

#include <stdbool.h>

#include <jansson.h>

#include "cv_envelope.h"

/* One action's outcome (plain data; executor_outcome_reset frees result). */
typedef struct {
    Conveyor__V1__ActionResult__Outcome outcome;
    bool replayed;
    json_t *result; /* what the bank returned minus outcome and replayed; NULL when FAILED */
    char reason[CV_DETAIL_MAX_BYTES];
} executor_outcome_t;

/* Reads rows (cv_pgconn's: an array of objects of column texts) into *out. */
void executor_outcome_read (const json_t *rows, executor_outcome_t *out);
/* Sets *out to FAILED with the reason (printf format), dropping what it held. */
void executor_outcome_fail (executor_outcome_t *out, const char *format, ...) __attribute__ ((format (printf, 2, 3)));
void executor_outcome_reset (executor_outcome_t *out);

void executor_outcome_test (bool verbose);

#endif
