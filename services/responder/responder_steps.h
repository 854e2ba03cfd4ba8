/* The reply's ladder as it was climbed down: each rung tried, in order, with why it did not
   answer, the last the one that did (ReplyStep, conveyor.proto). The responder's LLM call and its
   templates add to it; the Reply carries it, and the request's document shows it. */
#ifndef RESPONDER_STEPS_H
#define RESPONDER_STEPS_H

#include <stdbool.h>
#include <stddef.h>

#include "conveyor/v1/conveyor.pb-c.h"
#include "cv_arena.h"
#include "cv_envelope.h"

typedef struct {
    Conveyor__V1__ReplyStep__Rung rung;
    char name[CV_STEP_NAME_MAX_BYTES + 1];
    char skipped[CV_DETAIL_MAX_BYTES + 1]; /* "" for the rung that answered */
    const char *refused_by;                /* the guardrail rule that refused its text (static); NULL: none */
} responder_step_t;

typedef struct {
    size_t count;
    responder_step_t steps[CV_REPLY_STEPS_MAX];
} responder_steps_t;

/* Adds the rung tried, named name (a model or a template), with why it did not answer (NULL or ""
   for the one that did). Both are cut to their limits between code points. Past
   CV_REPLY_STEPS_MAX rungs the last is replaced, so the one that answered is always kept. */
void responder_steps_add (responder_steps_t *self, Conveyor__V1__ReplyStep__Rung rung, const char *name,
                          const char *skipped);

/* The last rung added was refused by the output guardrails' rule (a static name, responder_guard.h). */
void responder_steps_refused_by (responder_steps_t *self, const char *rule);

/* Puts the steps into reply, in arena. */
void responder_steps_to_reply (const responder_steps_t *self, cv_arena_t *arena, Conveyor__V1__Reply *reply);

void responder_steps_test (bool verbose);

#endif
