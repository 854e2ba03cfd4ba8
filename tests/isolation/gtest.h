/* The gatherer isolation tests' fixture: a real gatherer worker (its logic in a cv_worker) started
   on an agent file, driven by the harness over real sockets, and what its answers are checked with. */
#ifndef GTEST_H
#define GTEST_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cv_config.h"
#include "cv_envelope.h"
#include "cv_launcher.h"
#include "cv_log.h"
#include "cv_settings.h"
#include "cv_worker.h"
#include "harness.h"

/* One gatherer worker and everything its configuration points to, which must outlive it. */
typedef struct {
    cv_log_t *log;
    cv_config_t *agent;
    cv_settings_t *settings;
    cv_launcher_args_t args;
    cv_worker_config_t config;
    harness_t *harness;
    zactor_t *worker;
    char *control;
    bool low_confidence; /* what gtest_gather marks its intent */
    bool diagnostic;     /* what gtest_gather marks its request (`conveyor tools test`) */
} gtest_t;

/* A gatherer on url (its database) with the agent file text, or the demo bank's when NULL; run
   from the source folder. Two requests in flight. */
gtest_t *gtest_start_with (const char *url, const char *agent);
/* ... with that many database connections (a number, as --database-connections takes it). */
gtest_t *gtest_start_pooled (const char *url, const char *agent, const char *connections);
gtest_t *gtest_start (const char *url);
void gtest_stop (gtest_t **self_p);

/* A GatherRequest for user and intent (slots: a JSON object or NULL), text as given, in arena. */
cv_envelope_t *gtest_gather_request (gtest_t *self, cv_arena_t *arena, const char *user, const char *text,
                                     const char *intent_name, json_t *slots, int64_t deadline_in_ms);
/* Sends a GatherRequest (as gtest_gather_request) and returns the reply, which answers this request. */
cv_envelope_t *gtest_gather (gtest_t *self, const char *user, const char *text, const char *intent_name, json_t *slots,
                             int64_t deadline_in_ms);

/* The reply's Evidence as the decision worker sees it (cv_context), after the receiving edge's
   validation; asserts it holds exactly the tools named, in order. New reference. */
json_t *gtest_evidence (const cv_envelope_t *reply, const char *const *tools, size_t count);
void gtest_expect_text (const json_t *context, const char *path, const char *expected);
void gtest_expect_rows (const json_t *context, const char *tool, size_t rows);
/* Probes the worker; asserts ok and that its detail holds detail. */
void gtest_expect_probe (gtest_t *self, bool ok, const char *detail);

#endif
