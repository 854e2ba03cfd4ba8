/* Random ids for envelopes: message, request, trace and span ids, drawn from the kernel's
   generator without a system call for each. */
#ifndef CV_ENVELOPE_IDS_H
#define CV_ENVELOPE_IDS_H

#include <stdbool.h>
#include <stddef.h>

/* Writes size-1 random lower-case hex digits and a NUL into buffer: ids and trace ids. */
void cv_envelope_random_hex (char *buffer, size_t size);

void cv_envelope_ids_test (bool verbose);

#endif
