/* What the stand-in LLM server will answer: scripted steps, the default, the intent keywords. */
#include "fake_llm_script.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

/* One block: the step, then the copies of its strings, which the step points to. */
struct _fake_llm_taken_t {
    fake_llm_step_t step;
    fake_llm_taken_t *next; /* in the queue */
    char strings[];
};

typedef struct _s_intent_t s_intent_t;
struct _s_intent_t {
    char *keyword;
    char *label;
    s_intent_t *next;
};

struct _fake_llm_script_t {
    pthread_mutex_t mutex; /* guards everything below */
    fake_llm_taken_t *queue;
    fake_llm_taken_t *queue_tail;
    size_t pending;
    fake_llm_taken_t *fallback; /* the default step */
    s_intent_t *intents;
};

static const char *const s_mode_names[] = {"ok",    "slow",   "status",    "malformed", "hang",
                                           "close", "intent", "slow_body", "stream_cut"};
#define MODE_COUNT (sizeof s_mode_names / sizeof s_mode_names[0])

/* ---------------------------------------------------------------------------------------------
   Steps */

static fake_llm_taken_t *
s_taken_new (const fake_llm_step_t *step)
{
    assert (step->mode >= FAKE_LLM_OK && (size_t) step->mode < MODE_COUNT);
    size_t text = step->text ? strlen (step->text) + 1 : 0;
    size_t retry_after = step->retry_after ? strlen (step->retry_after) + 1 : 0;
    fake_llm_taken_t *self = cv_calloc (1, sizeof *self + text + retry_after);
    self->step = *step;
    if (step->text)
        self->step.text = memcpy (self->strings, step->text, text);
    if (step->retry_after)
        self->step.retry_after = memcpy (self->strings + text, step->retry_after, retry_after);
    return self;
}

const fake_llm_step_t *
fake_llm_taken_step (const fake_llm_taken_t *taken)
{
    assert (taken);
    return &taken->step;
}

void
fake_llm_taken_destroy (fake_llm_taken_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

const char *
fake_llm_mode_name (fake_llm_mode_t mode)
{
    assert (mode >= FAKE_LLM_OK && (size_t) mode < MODE_COUNT);
    return s_mode_names[mode];
}

/* A step from its JSON form; strings borrowed from object. */
static int
s_step_from_json (json_t *object, fake_llm_step_t *step, char *error, size_t size)
{
    memset (step, 0, sizeof *step);
    if (!json_is_object (object)) {
        snprintf (error, size, "a step must be a JSON object");
        return -1;
    }
    const char *mode = json_string_value (json_object_get (object, "mode"));
    size_t index = 0;
    while (mode && index < MODE_COUNT && strcmp (mode, s_mode_names[index]) != 0)
        index++;
    if (!mode || index == MODE_COUNT) {
        snprintf (error, size,
                  "mode must be one of ok, slow, slow_body, status, malformed, hang, close, intent, stream_cut");
        return -1;
    }
    step->mode = (fake_llm_mode_t) index;
    const char *key;
    json_t *value;
    json_object_foreach (object, key, value) {
        bool ok = true;
        if (strcmp (key, "mode") == 0)
            continue;
        if (strcmp (key, "content") == 0 || strcmp (key, "body") == 0)
            ok = (step->text = json_string_value (value)) != NULL;
        else if (strcmp (key, "retry_after") == 0)
            ok = (step->retry_after = json_string_value (value)) != NULL;
        else if (strcmp (key, "usage") == 0) {
            ok = json_is_boolean (value);
            step->no_usage = json_is_false (value);
        } else {
            json_int_t number = json_integer_value (value);
            ok = json_is_integer (value) && number >= 0 && number <= 100000000;
            if (strcmp (key, "status") == 0)
                step->status = (unsigned) number, ok = ok && number >= 100 && number <= 599;
            else if (strcmp (key, "delay_ms") == 0)
                step->delay_ms = (unsigned) number;
            else if (strcmp (key, "retry_after_ms") == 0)
                step->retry_after_ms = (unsigned) number;
            else if (strcmp (key, "prompt_tokens") == 0)
                step->prompt_tokens = (int) number;
            else if (strcmp (key, "completion_tokens") == 0)
                step->completion_tokens = (int) number;
            else {
                snprintf (error, size, "unknown step key %s", key);
                return -1;
            }
        }
        if (!ok) {
            snprintf (error, size, "bad value for step key %s", key);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
   The script */

fake_llm_script_t *
fake_llm_script_new (void)
{
    fake_llm_script_t *self = cv_calloc (1, sizeof *self);
    pthread_mutex_init (&self->mutex, NULL);
    self->fallback = s_taken_new (&(fake_llm_step_t){.mode = FAKE_LLM_OK});
    return self;
}

/* Empties the queue and the intents; the caller holds the mutex. */
static void
s_forget (fake_llm_script_t *self)
{
    while (self->queue) {
        fake_llm_taken_t *next = self->queue->next;
        fake_llm_taken_destroy (&self->queue);
        self->queue = next;
    }
    self->queue_tail = NULL;
    self->pending = 0;
    while (self->intents) {
        s_intent_t *next = self->intents->next;
        free (self->intents->keyword);
        free (self->intents->label);
        free (self->intents);
        self->intents = next;
    }
}

void
fake_llm_script_destroy (fake_llm_script_t **self_p)
{
    assert (self_p);
    fake_llm_script_t *self = *self_p;
    if (!self)
        return;
    s_forget (self);
    fake_llm_taken_destroy (&self->fallback);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

void
fake_llm_script_push (fake_llm_script_t *self, const fake_llm_step_t *step)
{
    assert (self && step);
    fake_llm_taken_t *copy = s_taken_new (step);
    pthread_mutex_lock (&self->mutex);
    if (self->queue_tail)
        self->queue_tail->next = copy;
    else
        self->queue = copy;
    self->queue_tail = copy;
    self->pending++;
    pthread_mutex_unlock (&self->mutex);
}

void
fake_llm_script_set_default (fake_llm_script_t *self, const fake_llm_step_t *step)
{
    assert (self && step);
    fake_llm_taken_t *copy = s_taken_new (step);
    pthread_mutex_lock (&self->mutex);
    fake_llm_taken_destroy (&self->fallback);
    self->fallback = copy;
    pthread_mutex_unlock (&self->mutex);
}

int
fake_llm_script_load (fake_llm_script_t *self, const char *text, bool as_default, char *error, size_t size)
{
    assert (self && text);
    json_error_t parse_error;
    json_t *value = json_loads (text, 0, &parse_error);
    if (!value) {
        snprintf (error, size, "not JSON: %s", parse_error.text);
        return -1;
    }
    /* Every step is checked before any is taken, so a bad list changes nothing. */
    json_t *list = json_is_array (value) && !as_default ? json_incref (value) : json_pack ("[O]", value);
    fake_llm_step_t steps[json_array_size (list) ? json_array_size (list) : 1];
    int rc = 0;
    for (size_t i = 0; i < json_array_size (list) && rc == 0; i++)
        rc = s_step_from_json (json_array_get (list, i), &steps[i], error, size);
    for (size_t i = 0; i < json_array_size (list) && rc == 0; i++)
        if (as_default)
            fake_llm_script_set_default (self, &steps[i]);
        else
            fake_llm_script_push (self, &steps[i]);
    json_decref (list);
    json_decref (value);
    return rc;
}

void
fake_llm_script_add_intent (fake_llm_script_t *self, const char *keyword, const char *label)
{
    assert (self && keyword && *keyword && label);
    s_intent_t *intent = cv_calloc (1, sizeof *intent);
    intent->keyword = cv_strdup (keyword);
    intent->label = cv_strdup (label);
    pthread_mutex_lock (&self->mutex);
    s_intent_t **link = &self->intents;
    while (*link)
        link = &(*link)->next;
    *link = intent;
    pthread_mutex_unlock (&self->mutex);
}

size_t
fake_llm_script_pending (fake_llm_script_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t pending = self->pending;
    pthread_mutex_unlock (&self->mutex);
    return pending;
}

fake_llm_taken_t *
fake_llm_script_take (fake_llm_script_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    fake_llm_taken_t *step = self->queue;
    if (step) {
        self->queue = step->next;
        if (!self->queue)
            self->queue_tail = NULL;
        self->pending--;
        step->next = NULL;
    } else
        step = s_taken_new (&self->fallback->step);
    pthread_mutex_unlock (&self->mutex);
    return step;
}

char *
fake_llm_script_intent (fake_llm_script_t *self, json_t *messages)
{
    assert (self);
    const char *text = "";
    for (size_t i = json_array_size (messages); i > 0; i--) {
        json_t *message = json_array_get (messages, i - 1);
        const char *role = json_string_value (json_object_get (message, "role"));
        if (role && strcmp (role, "user") == 0) {
            text = json_string_value (json_object_get (message, "content"));
            text = text ? text : "";
            break;
        }
    }
    const char *label = "unknown";
    pthread_mutex_lock (&self->mutex);
    for (s_intent_t *intent = self->intents; intent; intent = intent->next)
        if (strcasestr (text, intent->keyword)) {
            label = intent->label;
            break;
        }
    json_t *answer = json_pack ("{s:s}", "intent", label);
    pthread_mutex_unlock (&self->mutex);
    char *content = json_dumps (answer, JSON_COMPACT);
    json_decref (answer);
    return content;
}

void
fake_llm_script_reset (fake_llm_script_t *self)
{
    assert (self);
    fake_llm_taken_t *ok = s_taken_new (&(fake_llm_step_t){.mode = FAKE_LLM_OK});
    pthread_mutex_lock (&self->mutex);
    s_forget (self);
    fake_llm_taken_destroy (&self->fallback);
    self->fallback = ok;
    pthread_mutex_unlock (&self->mutex);
}
