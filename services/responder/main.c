/* conveyor-responder: renders the reply to each request from the agent file's templates. */
#include "cv_launcher.h"
#include "responder_server.h"

int
main (int argc, char **argv)
{
    const cv_launcher_spec_t spec = {
        .service = RESPONDER_SERVICE,
        .summary = "The responder worker: renders each request's reply from the agent file's templates\n"
                   "(the deciding policy's, the outcome's, then `fallback`), behind output guardrails.",
        .request_body = CONVEYOR__V1__ENVELOPE__BODY_RESPOND_REQUEST,
        .logic_new = responder_server_new,
        .logic_destroy = responder_server_destroy,
        .handle = responder_server_handle,
        .check = responder_server_check,
        .default_control_endpoint = RESPONDER_CONTROL_ENDPOINT,
    };
    return cv_launcher_run (&spec, argc, argv);
}
