/* What the stand-in LLM server will answer: the queue of scripted steps, the default step for an
   empty queue, and the keywords the intent mode looks for (see fake_llm.h for the modes).

   The server takes one step per chat request, from its connection threads, while the test pushes
   more from its own: every method is thread-safe. Steps are copied in, strings included, and a
   taken step is the caller's. */
#ifndef FAKE_LLM_SCRIPT_H
#define FAKE_LLM_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cv_assert.h"
#include "fake_llm.h"

typedef struct _fake_llm_script_t fake_llm_script_t;
/* A step taken from the script: the public form, with strings that live as long as it does. */
typedef struct _fake_llm_taken_t fake_llm_taken_t;

/* An empty script whose default step is ok. */
fake_llm_script_t *fake_llm_script_new (void);
void fake_llm_script_destroy (fake_llm_script_t **self_p);

/* Queues a copy of step. */
void fake_llm_script_push (fake_llm_script_t *self, const fake_llm_step_t *step);
/* A copy of step becomes the default. */
void fake_llm_script_set_default (fake_llm_script_t *self, const fake_llm_step_t *step);
/* The steps in text, a JSON step (or, unless as_default, a list of steps), queued or made the
   default; nothing changes and -1 with a reason in error when one of them is not a step. */
int fake_llm_script_load (fake_llm_script_t *self, const char *text, bool as_default, char *error, size_t size);
/* Adds a keyword after those already there: the intent mode answers label for it. */
void fake_llm_script_add_intent (fake_llm_script_t *self, const char *keyword, const char *label);

/* Steps still queued. */
size_t fake_llm_script_pending (fake_llm_script_t *self);
/* The next step: the queue's first, or a copy of the default. Owned: fake_llm_taken_destroy. */
fake_llm_taken_t *fake_llm_script_take (fake_llm_script_t *self);
/* The content the intent mode answers to messages (a chat request's list), the caller's:
   {"intent": LABEL} for the first keyword in the last user message, else "unknown". */
char *fake_llm_script_intent (fake_llm_script_t *self, json_t *messages);
/* Empties the queue and the intents; the default goes back to ok. */
void fake_llm_script_reset (fake_llm_script_t *self);

/* The taken step, borrowed from taken. */
const fake_llm_step_t *fake_llm_taken_step (const fake_llm_taken_t *taken);
void fake_llm_taken_destroy (fake_llm_taken_t **self_p);

/* A mode's name, as the JSON form and the request records spell it: "ok", "slow"... */
const char *fake_llm_mode_name (fake_llm_mode_t mode);

#endif
