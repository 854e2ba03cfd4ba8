/* The reply's ladder as it was climbed down (responder_steps.h). */
#include "responder_steps.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "cv_utf8.h"

/* Copies what fits of text into out (size bytes), cut between code points. */
static void
s_copy (char *out, size_t size, const char *text)
{
    size_t length = cv_utf8_prefix (text ? text : "", size - 1);
    memcpy (out, text ? text : "", length);
    out[length] = '\0';
}

void
responder_steps_add (responder_steps_t *self, Conveyor__V1__ReplyStep__Rung rung, const char *name, const char *skipped)
{
    assert (self && name && *name);
    assert (rung >= CONVEYOR__V1__REPLY_STEP__RUNG__LLM && rung <= CONVEYOR__V1__REPLY_STEP__RUNG__HANDOFF);
    if (self->count == CV_REPLY_STEPS_MAX)
        self->count--;
    responder_step_t *step = &self->steps[self->count++];
    step->rung = rung;
    s_copy (step->name, sizeof step->name, name);
    s_copy (step->skipped, sizeof step->skipped, skipped);
    step->refused_by = NULL;
}

void
responder_steps_refused_by (responder_steps_t *self, const char *rule)
{
    assert (self && self->count > 0 && rule);
    self->steps[self->count - 1].refused_by = rule;
}

void
responder_steps_to_reply (const responder_steps_t *self, cv_arena_t *arena, Conveyor__V1__Reply *reply)
{
    assert (self && arena && reply);
    reply->n_steps = self->count;
    reply->steps = self->count ? cv_arena_alloc (arena, self->count * sizeof *reply->steps) : NULL;
    for (size_t i = 0; i < self->count; i++) {
        Conveyor__V1__ReplyStep *step = reply->steps[i] = cv_envelope_reply_step_new (arena);
        step->rung = self->steps[i].rung;
        step->name = cv_arena_strdup (arena, self->steps[i].name);
        step->skipped = cv_arena_strdup (arena, self->steps[i].skipped);
    }
}

void
responder_steps_test (bool verbose)
{
    responder_steps_t steps = {0};
    responder_steps_add (&steps, CONVEYOR__V1__REPLY_STEP__RUNG__LLM, "small", "HTTP 500");
    char long_reason[CV_DETAIL_MAX_BYTES + 8];
    memset (long_reason, 'x', sizeof long_reason);
    memcpy (long_reason + CV_DETAIL_MAX_BYTES - 1, "\xc3\xa9", 2); /* é across the limit */
    long_reason[sizeof long_reason - 1] = '\0';
    responder_steps_add (&steps, CONVEYOR__V1__REPLY_STEP__RUNG__TEMPLATE, "card_rule", long_reason);
    assert (strlen (steps.steps[1].skipped) == CV_DETAIL_MAX_BYTES - 1); /* é left out whole */
    responder_steps_add (&steps, CONVEYOR__V1__REPLY_STEP__RUNG__HANDOFF, "fallback", NULL);

    /* into a Reply that validates and says it escalated */
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *envelope = cv_envelope_new (arena, "r-1", NULL, 4102444800000ULL, 1);
    Conveyor__V1__Reply *reply = cv_envelope_set_reply (envelope, arena);
    reply->text = "A colleague will reply.";
    responder_steps_to_reply (&steps, arena, reply);
    cv_error_t err;
    assert (cv_envelope_validate (envelope, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_REPLY), 0, &err) == 0);
    assert (reply->n_steps == 3 && strcmp (reply->steps[0]->skipped, "HTTP 500") == 0);
    assert (cv_envelope_reply_escalated (reply));

    /* past the limit, the last is replaced: the rung that answered stays */
    for (int i = 0; i < CV_REPLY_STEPS_MAX; i++)
        responder_steps_add (&steps, CONVEYOR__V1__REPLY_STEP__RUNG__TEMPLATE, "card_rule", "no value");
    responder_steps_add (&steps, CONVEYOR__V1__REPLY_STEP__RUNG__STATIC, "static.card_arrival", "");
    assert (steps.count == CV_REPLY_STEPS_MAX
            && steps.steps[CV_REPLY_STEPS_MAX - 1].rung == CONVEYOR__V1__REPLY_STEP__RUNG__STATIC);
    cv_arena_destroy (&arena);
    if (verbose)
        printf ("responder_steps: ok\n");
}
