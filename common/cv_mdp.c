/* The worker protocol between the orchestrator's ROUTER and each worker's DEALER, Majordomo-style. */
#include "cv_mdp.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static zmsg_t *
s_header (cv_mdp_command_t command)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, CV_MDP_PROTOCOL);
    uint8_t byte = (uint8_t) command;
    zmsg_addmem (msg, &byte, 1);
    return msg;
}

zmsg_t *
cv_mdp_ready (const char *service, const char *instance, uint32_t capacity)
{
    zmsg_t *msg = s_header (CV_MDP_READY);
    zmsg_addstr (msg, service);
    zmsg_addstr (msg, instance);
    zmsg_addstrf (msg, "%u", capacity);
    return msg;
}

zmsg_t *
cv_mdp_command (cv_mdp_command_t command)
{
    assert (command == CV_MDP_HEARTBEAT || command == CV_MDP_DISCONNECT);
    return s_header (command);
}

zmsg_t *
cv_mdp_with_body (cv_mdp_command_t command, const void *body, size_t size)
{
    assert (command == CV_MDP_REQUEST || command == CV_MDP_REPLY);
    zmsg_t *msg = s_header (command);
    zmsg_addmem (msg, body, size);
    return msg;
}

static int
s_copy_text (zframe_t *frame, char *out, size_t out_size, const char *field, cv_error_t *err)
{
    size_t size = zframe_size (frame);
    if (size == 0 || size >= out_size)
        return cv_error_set (err, CV_ERR_MALFORMED, field, "%s must be 1..%zu bytes", field, out_size - 1);
    memcpy (out, zframe_data (frame), size);
    out[size] = '\0';
    if (strlen (out) != size)
        return cv_error_set (err, CV_ERR_MALFORMED, field, "%s holds a NUL byte", field);
    return 0;
}

int
cv_mdp_decode (zmsg_t **msg_p, cv_mdp_message_t *message, cv_error_t *err)
{
    assert (msg_p && *msg_p && message);
    zmsg_t *msg = *msg_p;
    memset (message, 0, sizeof *message);
    int rc = -1;
    zframe_t *protocol = zmsg_first (msg);
    zframe_t *command = zmsg_next (msg);
    if (!protocol || !zframe_streq (protocol, CV_MDP_PROTOCOL))
        cv_error_set (err, CV_ERR_MALFORMED, "protocol", "first frame is not %s", CV_MDP_PROTOCOL);
    else if (!command || zframe_size (command) != 1)
        cv_error_set (err, CV_ERR_MALFORMED, "command", "second frame is not a one-byte command");
    else {
        message->command = (cv_mdp_command_t) zframe_data (command)[0];
        size_t rest = zmsg_size (msg) - 2;
        switch (message->command) {
        case CV_MDP_READY: {
            if (rest != 3) {
                cv_error_set (err, CV_ERR_MALFORMED, "ready", "READY takes 3 frames, got %zu", rest);
                break;
            }
            char capacity[16];
            if (s_copy_text (zmsg_next (msg), message->service, sizeof message->service, "service", err)
                || s_copy_text (zmsg_next (msg), message->instance, sizeof message->instance, "instance", err)
                || s_copy_text (zmsg_next (msg), capacity, sizeof capacity, "capacity", err))
                break;
            char *end;
            unsigned long value = strtoul (capacity, &end, 10);
            if (*end || value < 1 || value > CV_MDP_MAX_CAPACITY) {
                cv_error_set (err, CV_ERR_MALFORMED, "capacity", "capacity must be 1..%d", CV_MDP_MAX_CAPACITY);
                break;
            }
            message->capacity = (uint32_t) value;
            rc = 0;
            break;
        }
        case CV_MDP_REQUEST:
        case CV_MDP_REPLY:
            if (rest != 1) {
                cv_error_set (err, CV_ERR_MALFORMED, "body", "%s takes 1 frame, got %zu",
                              cv_mdp_command_name (message->command), rest);
                break;
            }
            message->body = zframe_dup (zmsg_next (msg));
            rc = 0;
            break;
        case CV_MDP_HEARTBEAT:
        case CV_MDP_DISCONNECT:
            rc = 0; /* extra frames are ignored, as in MDP */
            break;
        default:
            cv_error_set (err, CV_ERR_MALFORMED, "command", "unknown command 0x%02x", (unsigned) message->command);
        }
    }
    zmsg_destroy (msg_p);
    return rc;
}

void
cv_mdp_message_reset (cv_mdp_message_t *message)
{
    zframe_destroy (&message->body);
    memset (message, 0, sizeof *message);
}

const char *
cv_mdp_command_name (cv_mdp_command_t command)
{
    switch (command) {
    case CV_MDP_READY:
        return "READY";
    case CV_MDP_REQUEST:
        return "REQUEST";
    case CV_MDP_REPLY:
        return "REPLY";
    case CV_MDP_HEARTBEAT:
        return "HEARTBEAT";
    case CV_MDP_DISCONNECT:
        return "DISCONNECT";
    }
    return "UNKNOWN";
}

void
cv_mdp_test (bool verbose)
{
    cv_mdp_message_t message;
    cv_error_t err;

    zmsg_t *msg = cv_mdp_ready ("intent", "host-1-42", 4);
    assert (cv_mdp_decode (&msg, &message, &err) == 0);
    assert (msg == NULL);
    assert (message.command == CV_MDP_READY);
    assert (streq (message.service, "intent") && streq (message.instance, "host-1-42"));
    assert (message.capacity == 4);
    cv_mdp_message_reset (&message);

    msg = cv_mdp_with_body (CV_MDP_REQUEST, "abc", 3);
    assert (cv_mdp_decode (&msg, &message, &err) == 0);
    assert (message.command == CV_MDP_REQUEST && zframe_size (message.body) == 3);
    cv_mdp_message_reset (&message);
    assert (message.body == NULL);

    msg = cv_mdp_command (CV_MDP_HEARTBEAT);
    assert (cv_mdp_decode (&msg, &message, &err) == 0 && message.command == CV_MDP_HEARTBEAT);

    /* malformed: wrong protocol, unknown command, missing frames, capacity out of range */
    msg = zmsg_new ();
    zmsg_addstr (msg, "MDPW01");
    assert (cv_mdp_decode (&msg, &message, &err) == -1 && streq (err.field, "protocol"));
    msg = zmsg_new ();
    zmsg_addstr (msg, CV_MDP_PROTOCOL);
    zmsg_addmem (msg, "\x09", 1);
    assert (cv_mdp_decode (&msg, &message, &err) == -1 && streq (err.field, "command"));
    msg = cv_mdp_command (CV_MDP_HEARTBEAT);
    zframe_t *last = zmsg_last (msg);
    zframe_reset (last, "\x02", 1); /* REQUEST with no body */
    assert (cv_mdp_decode (&msg, &message, &err) == -1);
    msg = cv_mdp_ready ("intent", "x", 0);
    assert (cv_mdp_decode (&msg, &message, &err) == -1 && streq (err.field, "capacity"));
    msg = cv_mdp_ready ("intent", "x", 1);
    zframe_reset (zmsg_last (msg), "1x", 2);
    assert (cv_mdp_decode (&msg, &message, &err) == -1 && streq (err.field, "capacity"));
    if (verbose)
        printf ("cv_mdp: ok\n");
}
