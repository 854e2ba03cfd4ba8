/* The LLM client's circuit breakers, one per endpoint and model for the whole process: every
   cv_llm made for the same endpoint, model and breaker settings shares one cv_breaker, so when a
   provider goes down the first thread to see it opens the circuit for all of them, instead of
   each handler thread having to discover the outage by failing on its own.

   A breaker lives while a client holds it: cv_llm_breakers_acquire makes it on the first call
   for its key and counts the later ones; cv_llm_breakers_release gives one back and frees the
   breaker with the last. The key is the endpoint's URL, the model and the breaker's threshold and
   cool-down: two configurations that disagree on those get breakers of their own rather than one
   silently using the other's settings. Thread-safe: one mutex guards the registry (taken when a
   client is made or destroyed, never on a call); the breakers have their own. */
#ifndef CV_LLM_BREAKERS_H
#define CV_LLM_BREAKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_breaker.h"

/* The process's breaker for endpoint and model (both copied) with these settings (threshold >=
   1, cooldown_ms >= 1); never NULL. Give it back with cv_llm_breakers_release. */
cv_breaker_t *cv_llm_breakers_acquire (const char *endpoint, const char *model, unsigned threshold,
                                       uint64_t cooldown_ms);
/* Gives back *breaker_p (NULL is allowed) and sets it to NULL; the last holder frees it. */
void cv_llm_breakers_release (cv_breaker_t **breaker_p);

/* Breakers held now, for tests. */
size_t cv_llm_breakers_count (void);

void cv_llm_breakers_test (bool verbose);

#endif
