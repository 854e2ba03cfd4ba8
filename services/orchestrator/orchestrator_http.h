/* The HTTP front door: libmicrohttpd driven from the orchestrator's zloop (no threads of its own).

   Each HTTP request becomes an exchange handed to one handler with its method, path and parsed
   JSON body. The handler answers it at once or later (the connection is suspended meanwhile), but
   exactly once. Bodies that are too large (413) or not JSON (400) are answered here. */
#ifndef ORCHESTRATOR_HTTP_H
#define ORCHESTRATOR_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <czmq.h>
#include <jansson.h>

#include "cv_error.h"
#include "cv_log.h"

typedef struct _orchestrator_http_t orchestrator_http_t;
typedef struct _orchestrator_exchange_t orchestrator_exchange_t;

/* body is borrowed and NULL when the request had none. */
typedef void (orchestrator_http_handler_fn) (void *arg, orchestrator_exchange_t *exchange, const char *method,
                                             const char *path, json_t *body);

/* Listens on address:port (port 0 picks one); NULL with err when it cannot. */
orchestrator_http_t *orchestrator_http_new (zloop_t *loop, const char *address, int port, size_t max_body,
                                            orchestrator_http_handler_fn *handler, void *arg, cv_log_t *log,
                                            cv_error_t *err);
/* Answers what is still open with 503 and stops. */
void orchestrator_http_destroy (orchestrator_http_t **self_p);

int orchestrator_http_port (const orchestrator_http_t *self);

/* Answers the exchange with status and document (taken). After this the exchange is gone. */
void orchestrator_http_answer (orchestrator_exchange_t *exchange, unsigned status, json_t *document);
/* Answers with {"error": {"code": code, "message": message}}. */
void orchestrator_http_answer_error (orchestrator_exchange_t *exchange, unsigned status, const char *code,
                                     const char *format, ...) __attribute__ ((format (printf, 4, 5)));
/* Answers 503 with Retry-After: 1 and {"error": {"code", "message"}}: every 503 of the API says
   when to come back. */
void orchestrator_http_answer_unavailable (orchestrator_exchange_t *exchange, const char *code, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
/* The request's header name (case-insensitive), or NULL; borrowed, valid while the handler runs. */
const char *orchestrator_http_header (orchestrator_exchange_t *exchange, const char *name);
/* Answers exchange with status and text (taken, malloc'd, NUL-terminated) as content_type
   (static text, e.g. text/event-stream). After this the exchange is gone. */
void orchestrator_http_answer_text (orchestrator_exchange_t *exchange, unsigned status, const char *content_type,
                                    char *text);

/* Gives the answer of status and document (taken) another form, e.g. the OpenAI-compatible
   routes' (orchestrator_chat.h), and answers exchange with it: orchestrator_http_answer (which no
   longer shapes it) or orchestrator_http_answer_text. arg is borrowed. */
typedef void (orchestrator_http_shape_fn) (void *arg, orchestrator_exchange_t *exchange, unsigned status,
                                           json_t *document);
/* Every answer of the exchange, whoever gives it (errors included), goes through shape. */
void orchestrator_http_set_shape (orchestrator_exchange_t *exchange, orchestrator_http_shape_fn *shape, void *arg);

/* Adds a header to the exchange's coming answer, e.g. Retry-After. */
void orchestrator_http_add_header (orchestrator_exchange_t *exchange, const char *name, const char *value);

void orchestrator_http_test (bool verbose);

#endif
