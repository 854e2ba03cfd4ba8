/* The table of the intent worker's self-tests: each class's x_test (bool verbose). */
#ifndef SELFTESTS_H
#define SELFTESTS_H

#include <stdbool.h>

#include "intent_classifier.h"
#include "intent_features.h"
#include "intent_forms.h"
#include "intent_lexicon.h"
#include "intent_model.h"
#include "intent_model_file.h"
#include "intent_rules.h"
#include "intent_slots.h"
#include "intent_server.h"
#include "intent_text.h"
#include "intent_weights.h"

typedef struct {
    const char *name;
    void (*run) (bool verbose);
} selftest_t;

static const selftest_t selftests[] = {
    {"intent_classifier", intent_classifier_test},
    {"intent_rules", intent_rules_test},
    {"intent_lexicon", intent_lexicon_test},
    {"intent_forms", intent_forms_test},
    {"intent_slots", intent_slots_test},
    {"intent_server", intent_server_test},
    {"intent_text", intent_text_test},
    {"intent_features", intent_features_test},
    {"intent_weights", intent_weights_test},
    {"intent_model", intent_model_test},
    {"intent_model_file", intent_model_file_test},
    {NULL, NULL},
};

#endif
