/* conveyor-intent: classifies customer messages into intents: rules, the trained model, an LLM. */
#include "cv_launcher.h"
#include "intent_server.h"

int
main (int argc, char **argv)
{
    const cv_launcher_spec_t spec = {
        .service = INTENT_SERVER_SERVICE,
        .summary = "conveyor's intent worker: classifies a customer's text into an intent and its slots",
        .request_body = CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST,
        .logic_new = intent_server_logic_new,
        .logic_destroy = intent_server_logic_destroy,
        .handle = intent_server_handle,
        .check = intent_server_check,
        .default_control_endpoint = INTENT_SERVER_CONTROL_ENDPOINT,
        .extra_settings = intent_server_settings,
        .extra_count = intent_server_settings_count,
    };
    return cv_launcher_run (&spec, argc, argv);
}
