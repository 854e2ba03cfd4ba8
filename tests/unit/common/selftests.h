/* The table of self-tests: each class's x_test (bool verbose). A name may have several entries,
   run in order (cv_llm: its self-test, then its scenarios against the stand-in server). */
#ifndef SELFTESTS_H
#define SELFTESTS_H

#include <stdbool.h>

#include "cv_actor.h"
#include "cv_arena.h"
#include "cv_breaker.h"
#include "cv_config.h"
#include "cv_context.h"
#include "cv_envelope.h"
#include "cv_error.h"
#include "cv_histogram.h"
#include "cv_llm.h"
#include "cv_llm_config.h"
#include "cv_llm_json.h"
#include "cv_log.h"
#include "cv_mdp.h"
#include "cv_msgpack.h"
#include "cv_pg.h"
#include "cv_pgconn.h"
#include "cv_pgpipe.h"
#include "cv_probe.h"
#include "cv_settings.h"
#include "cv_template.h"
#include "cv_utf8.h"
#include "fake_llm.h"
#include "llm_client_test.h"

typedef struct {
    const char *name;
    void (*run) (bool verbose);
} selftest_t;

static const selftest_t selftests[] = {
    {"cv_actor", cv_actor_test},
    {"cv_arena", cv_arena_test},
    {"cv_breaker", cv_breaker_test},
    {"cv_config", cv_config_test},
    {"cv_context", cv_context_test},
    {"cv_envelope", cv_envelope_test},
    {"cv_error", cv_error_test},
    {"cv_histogram", cv_histogram_test},
    {"cv_llm", cv_llm_test},
    {"cv_llm", llm_client_test}, /* cv_llm against the stand-in LLM server (tests/fakes) */
    {"cv_llm_config", cv_llm_config_test},
    {"cv_llm_json", cv_llm_json_test},
    {"cv_log", cv_log_test},
    {"cv_mdp", cv_mdp_test},
    {"cv_msgpack", cv_msgpack_test},
    {"cv_pg", cv_pg_test},
    {"cv_pgconn", cv_pgconn_test},
    {"cv_pgpipe", cv_pgpipe_test},
    {"cv_probe", cv_probe_test},
    {"cv_settings", cv_settings_test},
    {"cv_template", cv_template_test},
    {"cv_utf8", cv_utf8_test},
    {"fake_llm", fake_llm_test},
    {NULL, NULL},
};

#endif
