/* What the stand-in LLM server was sent: one JSON record a request, in the order they arrived
   (fake_llm.h names the record's fields), so that a test can check what its client sent and wait
   until a request has arrived.

   Connection threads add records while the test reads them: every method is thread-safe. */
#ifndef FAKE_LLM_JOURNAL_H
#define FAKE_LLM_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cv_assert.h"

typedef struct _fake_llm_journal_t fake_llm_journal_t;

fake_llm_journal_t *fake_llm_journal_new (void);
void fake_llm_journal_destroy (fake_llm_journal_t **self_p);

/* Adds record (taken) and wakes those waiting. */
void fake_llm_journal_add (fake_llm_journal_t *self, json_t *record);
/* Records so far. */
size_t fake_llm_journal_count (fake_llm_journal_t *self);
/* Waits up to timeout_ms until there are at least count records; false when there are not. */
bool fake_llm_journal_wait (fake_llm_journal_t *self, size_t count, int timeout_ms);
/* A copy of the index-th record (a new reference), or NULL. */
json_t *fake_llm_journal_get (fake_llm_journal_t *self, size_t index);
/* A copy of all the records, a JSON list (a new reference). */
json_t *fake_llm_journal_all (fake_llm_journal_t *self);
/* Forgets every record. */
void fake_llm_journal_clear (fake_llm_journal_t *self);

#endif
