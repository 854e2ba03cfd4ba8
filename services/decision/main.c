/* conveyor-decision: applies the agent file's policies to a request's intent and evidence. */
#include "cv_launcher.h"
#include "decision_server.h"

int
main (int argc, char **argv)
{
    const cv_launcher_spec_t spec = {
        .service = DECISION_SERVER_SERVICE,
        .summary = "conveyor's decision worker: chooses an outcome and actions from the intent and evidence",
        .request_body = CONVEYOR__V1__ENVELOPE__BODY_DECIDE_REQUEST,
        .logic_new = decision_server_logic_new,
        .logic_destroy = decision_server_logic_destroy,
        .handle = decision_server_handle,
        .check = decision_server_check,
        .default_control_endpoint = DECISION_SERVER_CONTROL_ENDPOINT,
    };
    return cv_launcher_run (&spec, argc, argv);
}
