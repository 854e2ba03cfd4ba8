/* One tool's outcome. */
#include "gatherer_result.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

void
gatherer_result_reset (gatherer_result_t *result)
{
    assert (result);
    free (result->data);
    memset (result, 0, sizeof *result);
}

/*  --------------------------------------------------------------------------
    Self-test */

void
gatherer_result_test (bool verbose)
{
    gatherer_result_t result = {.status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK, .size = 3, .rows = 1};
    result.data = cv_malloc (3);
    snprintf (result.error, sizeof result.error, "x");
    gatherer_result_reset (&result);
    assert (!result.data && result.size == 0 && result.rows == 0 && result.error[0] == '\0');
    gatherer_result_reset (&result); /* an empty one too */
    if (verbose)
        printf ("gatherer_result: ok\n");
}
