/* Structured logs: one JSON object a line on stderr, with the service, instance and request ids. */
#include "cv_log.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <jansson.h>

#include "cv_alloc.h"
#include "cv_personal.h"
#include "cv_utf8.h"

/* A message's longest, cut between code points. */
#define LOG_MESSAGE_MAX_BYTES 2047

struct _cv_log_t {
    char *service;
    char *instance;
    bool verbose;
    FILE *out;
    cv_personal_t *personal; /* redacts messages; NULL: they are written as they are */
};

static const char *s_level_names[] = {"debug", "info", "warn", "error"};

cv_log_t *
cv_log_new (const char *service, const char *instance, bool verbose)
{
    assert (service);
    cv_log_t *self = cv_calloc (1, sizeof *self);
    self->service = cv_strdup (service);
    self->instance = cv_strdup (instance ? instance : "");
    self->verbose = verbose;
    self->out = stderr;
    if (!self->service || !self->instance)
        cv_log_destroy (&self);
    return self;
}

void
cv_log_destroy (cv_log_t **self_p)
{
    assert (self_p);
    cv_log_t *self = *self_p;
    if (!self)
        return;
    free (self->service);
    free (self->instance);
    cv_personal_destroy (&self->personal);
    free (self);
    *self_p = NULL;
}

bool
cv_log_verbose (const cv_log_t *self)
{
    return self && self->verbose;
}

const char *
cv_log_service (const cv_log_t *self)
{
    return self->service;
}

const char *
cv_log_instance (const cv_log_t *self)
{
    return self->instance;
}

int
cv_log_redact (cv_log_t *self, cv_error_t *err)
{
    assert (self);
    if (!self->personal && !(self->personal = cv_personal_new (err)))
        return -1;
    return 0;
}

/* A copy of value whose strings (keys too) and integers are redacted; an integer that holds
   personal data becomes its redacted text. */
static json_t *
s_redacted (const cv_log_t *self, const json_t *value)
{
    if (json_is_string (value)) {
        const char *text = json_string_value (value);
        if (!cv_utf8_valid (text, strlen (text)))
            return json_string ("(not valid UTF-8)");
        char *redacted = cv_personal_redact (self->personal, text);
        json_t *copy = json_string (redacted);
        free (redacted);
        return copy;
    }
    if (json_is_integer (value)) { /* a card or phone number kept as a number */
        char text[32];
        snprintf (text, sizeof text, "%lld", (long long) json_integer_value (value));
        char *redacted = cv_personal_redact (self->personal, text);
        json_t *copy = strcmp (redacted, text) == 0 ? json_deep_copy (value) : json_string (redacted);
        free (redacted);
        return copy;
    }
    if (json_is_array (value)) {
        json_t *copy = json_array ();
        size_t index;
        json_t *item;
        json_array_foreach ((json_t *) value, index, item)
            json_array_append_new (copy, s_redacted (self, item));
        return copy;
    }
    if (json_is_object (value)) {
        json_t *copy = json_object ();
        const char *key;
        json_t *item;
        json_object_foreach ((json_t *) value, key, item) {
            char *redacted = cv_personal_redact (self->personal, key);
            json_object_set_new (copy, redacted, s_redacted (self, item));
            free (redacted);
        }
        return copy;
    }
    return json_deep_copy (value);
}

static void
s_emit (cv_log_t *self, cv_log_level_t level, const char *request_id, const char *trace_id, const char *key,
        const json_t *value, const char *format, va_list args)
{
    if (!self || (level == CV_LOG_DEBUG && !self->verbose))
        return;
    /* The whole message, redacted, then cut: a number the cut went through would not be found. */
    char *message = cv_vasprintf (format, args);
    bool valid = cv_utf8_valid (message, strlen (message));
    if (valid && self->personal) {
        char *redacted = cv_personal_redact (self->personal, message);
        free (message);
        message = redacted;
    }
    if (valid)
        message[cv_utf8_prefix (message, LOG_MESSAGE_MAX_BYTES)] = '\0';

    struct timeval now;
    gettimeofday (&now, NULL);
    struct tm tm;
    gmtime_r (&now.tv_sec, &tm);
    char ts[40];
    size_t used = strftime (ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (ts + used, sizeof ts - used, ".%03dZ", (int) (now.tv_usec / 1000));

    json_t *event = json_object ();
    json_object_set_new (event, "ts", json_string (ts));
    json_object_set_new (event, "level", json_string (s_level_names[level]));
    json_object_set_new (event, "service", json_string (self->service));
    if (*self->instance)
        json_object_set_new (event, "instance", json_string (self->instance));
    if (request_id && *request_id)
        json_object_set_new (event, "request_id", json_string (request_id));
    if (trace_id && *trace_id)
        json_object_set_new (event, "trace_id", json_string (trace_id));
    json_object_set_new (event, "msg", json_string (valid ? message : "(message not valid UTF-8)"));
    if (key && value && !json_object_get (event, key))
        json_object_set_new (event, key, self->personal ? s_redacted (self, value) : json_deep_copy (value));
    free (message);
    char *line = json_dumps (event, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref (event);
    if (line) {
        fprintf (self->out, "%s\n", line);
        free (line);
    }
}

void
cv_log_event (cv_log_t *self, cv_log_level_t level, const char *request_id, const char *trace_id, const char *format,
              ...)
{
    va_list args;
    va_start (args, format);
    s_emit (self, level, request_id, trace_id, NULL, NULL, format, args);
    va_end (args);
}

void
cv_log_record (cv_log_t *self, cv_log_level_t level, const char *request_id, const char *trace_id, const char *key,
               const json_t *value, const char *format, ...)
{
    assert (key && value);
    va_list args;
    va_start (args, format);
    s_emit (self, level, request_id, trace_id, key, value, format, args);
    va_end (args);
}

void
cv_log_test (bool verbose)
{
    cv_log_t *log = cv_log_new ("test", "i-1", false);
    assert (log);
    assert (!cv_log_verbose (log));
    assert (strcmp (cv_log_service (log), "test") == 0);
    assert (strcmp (cv_log_instance (log), "i-1") == 0);

    char *buffer = NULL;
    size_t size = 0;
    log->out = open_memstream (&buffer, &size);
    assert (log->out);
    cv_log_event (log, CV_LOG_INFO, "r-1", "t-1", "said \"%s\"", "hi");
    cv_log_debug (log, "dropped: not verbose");
    fclose (log->out);
    log->out = stderr;
    json_error_t error;
    json_t *event = json_loads (buffer, 0, &error);
    assert (event);
    assert (strcmp (json_string_value (json_object_get (event, "msg")), "said \"hi\"") == 0);
    assert (strcmp (json_string_value (json_object_get (event, "request_id")), "r-1") == 0);
    assert (strcmp (json_string_value (json_object_get (event, "level")), "info") == 0);
    assert (strchr (buffer, '\n') == buffer + size - 1);
    json_decref (event);
    free (buffer);

    /* redacted: the personal data in a message is written as its kind */
    cv_error_t err;
    assert (cv_log_redact (log, &err) == 0);
    buffer = NULL;
    log->out = open_memstream (&buffer, &size);
    static char long_text[LOG_MESSAGE_MAX_BYTES + 64];
    /* cut first, the card would keep 12 of its digits, too few to be found */
    memset (long_text, 'x', LOG_MESSAGE_MAX_BYTES - 15);
    snprintf (long_text + LOG_MESSAGE_MAX_BYTES - 15, 64, " 4417 1234 5678 9113 tail");
    cv_log_event (log, CV_LOG_WARN, NULL, NULL, "customer wrote %s", "my card 4417 1234 5678 9113, mail a@b.example");
    cv_log_event (log, CV_LOG_WARN, NULL, NULL, "%s", long_text); /* a number across the cut: redacted first */
    fclose (log->out);
    log->out = stderr;
    event = json_loads (buffer, JSON_DISABLE_EOF_CHECK, &error);
    cv_assert_that (
        strcmp (json_string_value (json_object_get (event, "msg")), "customer wrote my card [card], mail [email]") == 0,
        "%s", buffer);
    json_decref (event);
    event = json_loads (strchr (buffer, '\n') + 1, 0, &error);
    const char *cut = json_string_value (json_object_get (event, "msg"));
    cv_assert_that (cut && strlen (cut) <= LOG_MESSAGE_MAX_BYTES && strstr (cut, "[card]") && !strstr (cut, "4417"),
                    "%s", cut ? cut : buffer);
    json_decref (event);
    free (buffer);

    /* a record beside the message: its strings redacted too, the event's own keys kept */
    buffer = NULL;
    log->out = open_memstream (&buffer, &size);
    json_t *record =
        json_pack ("{s:s, s:[s, i], s:{s:s}, s:I}", "outcome", "refund", "values", "to a@b.example", 3, "params",
                   "a@b.example", "4417 1234 5678 9113", "card", (json_int_t) 4417123456789113LL);
    cv_log_record (log, CV_LOG_INFO, "r-2", NULL, "decision", record, "decided %s", "refund");
    cv_log_record (log, CV_LOG_INFO, "r-2", NULL, "msg", record, "a record under the message's key is left out");
    fclose (log->out);
    log->out = stderr;
    event = json_loads (buffer, JSON_DISABLE_EOF_CHECK, &error);
    json_t *logged = json_object_get (event, "decision");
    cv_assert_that (
        logged && strcmp (json_string_value (json_object_get (logged, "outcome")), "refund") == 0
            && strcmp (json_string_value (json_array_get (json_object_get (logged, "values"), 0)), "to [email]") == 0
            && json_integer_value (json_array_get (json_object_get (logged, "values"), 1)) == 3
            && strcmp (json_string_value (json_object_get (json_object_get (logged, "params"), "[email]")), "[card]")
                   == 0,
        "%s", buffer);
    assert (strstr (json_string_value (json_object_get (event, "msg")), "decided refund"));
    cv_assert_that (json_is_string (json_object_get (logged, "card"))
                        && !strstr (json_string_value (json_object_get (logged, "card")), "4417"),
                    "a card number as a number: %s", buffer);
    json_decref (event);
    event = json_loads (strchr (buffer, '\n') + 1, 0, &error);
    assert (event && json_is_string (json_object_get (event, "msg")));
    json_decref (event);
    json_decref (record);
    free (buffer);

    cv_log_destroy (&log);
    assert (log == NULL);
    cv_log_destroy (&log);
    if (verbose)
        printf ("cv_log: ok\n");
}
