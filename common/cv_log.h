/* Structured logs: one JSON object a line on stderr, with the service, instance and request ids. */
#ifndef CV_LOG_H
#define CV_LOG_H

#include <stdbool.h>

#include <jansson.h>

#include "cv_assert.h"
#include "cv_error.h"

typedef struct _cv_log_t cv_log_t;

typedef enum { CV_LOG_DEBUG, CV_LOG_INFO, CV_LOG_WARN, CV_LOG_ERROR } cv_log_level_t;

/* A logger for one service instance; debug events are dropped, unformatted, unless verbose. */
cv_log_t *cv_log_new (const char *service, const char *instance, bool verbose);
void cv_log_destroy (cv_log_t **self_p);

bool cv_log_verbose (const cv_log_t *self);
const char *cv_log_service (const cv_log_t *self);
const char *cv_log_instance (const cv_log_t *self);

/* From now on, the personal data in messages (cv_personal: e-mail addresses, phone numbers,
   IBANs, card numbers) is written as its kind ("[email]"); every service's log does this unless
   --log-personal-data says otherwise (cv_launcher). -1 with err when the patterns cannot be made. */
int cv_log_redact (cv_log_t *self, cv_error_t *err) CV_MUST_CHECK;

/* Logs one event. request_id and trace_id may be NULL or "" when the event belongs to no request.
   The message is formatted printf-style and escaped for JSON. */
void cv_log_event (cv_log_t *self, cv_log_level_t level, const char *request_id, const char *trace_id,
                   const char *format, ...) __attribute__ ((format (printf, 5, 6)));

/* Logs one event with a JSON value beside its message, under key (not one of the event's own:
   ts, level, service, instance, request_id, trace_id, msg): a record for a machine to read, as
   the orchestrator's decision log is. Its strings are redacted as the message is. value is
   borrowed. */
void cv_log_record (cv_log_t *self, cv_log_level_t level, const char *request_id, const char *trace_id, const char *key,
                    const json_t *value, const char *format, ...) __attribute__ ((format (printf, 7, 8)));

#define cv_log_debug(log, ...)                                                                                         \
    do {                                                                                                               \
        if (cv_log_verbose (log))                                                                                      \
            cv_log_event ((log), CV_LOG_DEBUG, NULL, NULL, __VA_ARGS__);                                               \
    } while (0)
#define cv_log_info(log, ...) cv_log_event ((log), CV_LOG_INFO, NULL, NULL, __VA_ARGS__)
#define cv_log_warn(log, ...) cv_log_event ((log), CV_LOG_WARN, NULL, NULL, __VA_ARGS__)
#define cv_log_error(log, ...) cv_log_event ((log), CV_LOG_ERROR, NULL, NULL, __VA_ARGS__)

void cv_log_test (bool verbose);

#endif
