/* libFuzzer target: any bytes through the receiving edge every service uses (cv_envelope_unpack,
   cv_envelope_validate for every body) and, for what validates, the msgpack decoding of its free-form
   fields (cv_context_new). Nothing may crash, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>

#include "cv_context.h"
#include "cv_envelope.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    cv_error_t err;
    cv_envelope_t *envelope = cv_envelope_unpack (data, size, &err);
    if (!envelope)
        return 0;
    if (cv_envelope_validate (envelope, 0xffffffffu, 0, &err) == 0) {
        const Conveyor__V1__Intent *intent = NULL;
        const Conveyor__V1__Evidence *evidence = NULL;
        const Conveyor__V1__Decision *decision = NULL;
        switch (envelope->body_case) {
        case CONVEYOR__V1__ENVELOPE__BODY_INTENT:
            intent = envelope->intent;
            break;
        case CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE:
            evidence = envelope->evidence;
            break;
        case CONVEYOR__V1__ENVELOPE__BODY_DECISION:
            decision = envelope->decision;
            break;
        case CONVEYOR__V1__ENVELOPE__BODY_RESPOND_REQUEST:
            intent = envelope->respond_request->intent;
            evidence = envelope->respond_request->evidence;
            decision = envelope->respond_request->decision;
            break;
        default:
            break;
        }
        json_t *context = cv_context_new ("fuzz", "fuzz", intent, evidence, decision, &err);
        json_decref (context);
        size_t packed_size;
        uint8_t *packed = cv_envelope_pack (envelope, &packed_size);
        free (packed);
    }
    cv_envelope_destroy (&envelope);
    return 0;
}
