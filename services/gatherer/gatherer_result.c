/* One tool's outcome. */
#include "gatherer_result.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void
gatherer_result_reset (gatherer_result_t *result)
{
    assert (result);
    free (result->data);
    memset (result, 0, sizeof *result);
}
