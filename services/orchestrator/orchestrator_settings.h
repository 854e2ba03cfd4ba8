/* The orchestrator's settings: its table, each row bound to a field of orchestrator_config_t,
   and how cv_launcher_serve starts the orchestrator actor from them. */
#ifndef ORCHESTRATOR_SETTINGS_H
#define ORCHESTRATOR_SETTINGS_H

#include <stdbool.h>

#include "cv_launcher.h"

/* What conveyor-orchestrator's main.c hands to cv_launcher_serve. */
extern const cv_launcher_service_t orchestrator_settings_service;

void orchestrator_settings_test (bool verbose);

#endif
