/* conveyor-bankapi's settings: its table, each row bound to a field of bankapi_config_t, and how
   cv_launcher_serve starts the bank API's actor from them. */
#ifndef BANKAPI_SETTINGS_H
#define BANKAPI_SETTINGS_H

#include <stdbool.h>

#include "cv_launcher.h"

/* What conveyor-bankapi's main.c hands to cv_launcher_serve. */
extern const cv_launcher_service_t bankapi_settings_service;

void bankapi_settings_test (bool verbose);

#endif
