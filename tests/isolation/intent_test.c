/* Isolation test of the intent worker: the real intent logic on the generic worker, started in
   process with the demo agent file and driven by the harness over real sockets — good requests,
   malformed traffic, a probe on the control endpoint, and an agent file that cannot start. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_launcher.h"
#include "cv_msgpack.h"
#include "fake_llm.h"
#include "harness.h"
#include "intent_server.h"

static cv_worker_config_t
s_config (cv_log_t *log, cv_launcher_args_t *args)
{
    cv_worker_config_t config = cv_launcher_worker_config (&intent_server_spec, args, log);
    config.capacity = 2; /* two handler threads, each a classifier over the one knowledge */
    return config;
}

/* text asked with deadline_in_ms and budget (NULL: none) on the envelope. */
static cv_envelope_t *
s_ask_within (harness_t *harness, const char *text, int64_t deadline_in_ms, Conveyor__V1__Budget *budget)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *request = harness_envelope (arena, deadline_in_ms);
    request->budget = budget;
    Conveyor__V1__IntentRequest *body = cv_envelope_set_intent_request (request, arena);
    body->user_id = "cust-1";
    body->session_id = "sess-1";
    body->text = (char *) text;
    cv_envelope_t *reply = harness_request (harness, request, 5000);
    assert (reply);
    assert (streq (reply->message_id, request->message_id));
    assert (streq (reply->request_id, request->request_id));
    assert (streq (reply->trace_id, request->trace_id));
    cv_arena_destroy (&arena);
    return reply;
}

static cv_envelope_t *
s_ask (harness_t *harness, const char *text, int64_t deadline_in_ms)
{
    return s_ask_within (harness, text, deadline_in_ms, NULL);
}

/* Asserts text is classified as intent by rule (NULL for the fallback), with slot name = value
   when name is given, and that the reply passes the orchestrator's validation. */
static void
s_expect_intent (harness_t *harness, const char *text, const char *intent, const char *rule, const char *name,
                 const char *value)
{
    cv_envelope_t *reply = s_ask (harness, text, 5000);
    cv_assert_that (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_INTENT, "'%s': expected an Intent, got %s", text,
                    cv_envelope_body_name (reply->body_case));
    cv_error_t err;
    assert (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_INTENT), 0, &err) == 0);
    const Conveyor__V1__Intent *result = reply->intent;
    cv_assert_that (!(intent && !streq (result->name, intent)), "'%s': expected %s, got %s", text, intent,
                    result->name);
    assert (!result->spend); /* no LLM: nothing spent, nothing held back */
    if (rule && streq (rule, "model")) {
        /* the trained model, above its threshold */
        assert (streq (result->rule, "") && result->method == CONVEYOR__V1__INTENT__METHOD__MODEL);
        assert (!result->low_confidence && result->n_candidates == 5 && streq (result->candidates[0]->name, intent));
    } else if (rule) {
        assert (streq (result->rule, rule));
        assert (result->method == CONVEYOR__V1__INTENT__METHOD__RULE && result->confidence == 1.0f);
        assert (!result->low_confidence);
        assert (result->n_candidates == 1 && streq (result->candidates[0]->name, intent));
    } else {
        /* the model's guess, below its threshold, with no LLM to ask */
        assert (streq (result->rule, ""));
        assert (result->method == CONVEYOR__V1__INTENT__METHOD__FALLBACK && result->low_confidence);
        assert (result->n_candidates == 5 && streq (result->candidates[0]->name, result->name));
    }
    json_t *slots = cv_msgpack_unpack (result->slots.data, result->slots.len, "slots", &err);
    assert (json_is_object (slots));
    if (name)
        assert (streq (json_string_value (json_object_get (slots, name)), value));
    else
        assert (json_object_size (slots) == 0);
    json_decref (slots);
    cv_envelope_destroy (&reply);
}

/* The Intent for text, asked with deadline_in_ms. */
static Conveyor__V1__Intent *
s_intent_of (harness_t *harness, const char *text, int64_t deadline_in_ms, cv_envelope_t **reply_p)
{
    *reply_p = s_ask (harness, text, deadline_in_ms);
    assert ((*reply_p)->body_case == CONVEYOR__V1__ENVELOPE__BODY_INTENT);
    return (*reply_p)->intent;
}

/* Below the model's threshold, with the stand-in LLM server: its pick is taken when it names one
   of the model's labels; an off-list or malformed answer, an error or a timeout leaves the model's
   guess, marked low_confidence, within the request's deadline. A confident text never asks it. */
static void
s_llm_scenarios (cv_log_t *log, cv_settings_t *settings)
{
    fake_llm_t *fake = fake_llm_new (0, false);
    assert (fake);
    setenv ("CONVEYOR_LLM_BASE_URL", fake_llm_base_url (fake), 1);
    setenv ("CONVEYOR_LLM_MODEL", "stand-in", 1);
    cv_error_t err;
    cv_config_t *agent = cv_config_load (CONVEYOR_SOURCE_DIR "/deploy/config/bank-agent.yaml", &err);
    assert (agent);
    cv_launcher_args_t args = {.agent = agent, .settings = settings};
    harness_t *harness = harness_new ();
    cv_worker_config_t config = s_config (log, &args);
    zactor_t *worker = harness_start_worker (harness, &config);
    const char *vague = "what is your favourite colour";

    /* the LLM chooses among the labels */
    fake_llm_push (fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "{\"intent\": \"card_arrival\"}"});
    cv_envelope_t *reply;
    Conveyor__V1__Intent *intent = s_intent_of (harness, vague, 5000, &reply);
    assert (streq (intent->name, "card_arrival") && intent->method == CONVEYOR__V1__INTENT__METHOD__LLM);
    assert (!intent->low_confidence && intent->n_candidates == 5);
    cv_envelope_destroy (&reply);
    assert (fake_llm_request_count (fake) == 1);
    json_t *sent = fake_llm_request (fake, 0);
    char *messages = json_dumps (json_object_get (sent, "messages"), JSON_COMPACT);
    assert (strstr (messages, vague) && strstr (messages, "card_arrival") && strstr (messages, "Most likely"));
    free (messages);
    /* ...asked for in the shape of a JSON schema: {"intent": one of the 77 labels} */
    json_t *format = json_object_get (json_object_get (sent, "body"), "response_format");
    json_t *schema = json_object_get (json_object_get (format, "json_schema"), "schema");
    assert (streq (json_string_value (json_object_get (format, "type")), "json_schema"));
    assert (
        json_array_size (json_object_get (json_object_get (json_object_get (schema, "properties"), "intent"), "enum"))
        == 77);
    json_decref (sent);

    /* an answer off the list (it does not match the schema), one that is not JSON, and a server
       error: the model's guess */
    fake_llm_push (fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "{\"intent\": \"buy_bitcoin\"}"});
    intent = s_intent_of (harness, vague, 5000, &reply);
    assert (intent->method == CONVEYOR__V1__INTENT__METHOD__FALLBACK && intent->low_confidence);
    assert (!streq (intent->name, "buy_bitcoin"));
    cv_envelope_destroy (&reply);
    fake_llm_push (fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "card_arrival, I think"});
    intent = s_intent_of (harness, vague, 5000, &reply);
    assert (intent->method == CONVEYOR__V1__INTENT__METHOD__FALLBACK && intent->low_confidence);
    cv_envelope_destroy (&reply);
    fake_llm_push (fake, &(fake_llm_step_t){.mode = FAKE_LLM_MALFORMED, .text = "<html>bad gateway</html>"});
    intent = s_intent_of (harness, vague, 5000, &reply);
    assert (intent->method == CONVEYOR__V1__INTENT__METHOD__FALLBACK && intent->low_confidence);
    cv_envelope_destroy (&reply);

    /* an LLM that hangs: the reply still comes before the request's deadline, with the guess */
    fake_llm_set_default (fake, &(fake_llm_step_t){.mode = FAKE_LLM_HANG});
    int64_t asked = zclock_time ();
    intent = s_intent_of (harness, vague, 800, &reply);
    assert (intent->method == CONVEYOR__V1__INTENT__METHOD__FALLBACK && intent->low_confidence);
    assert (reply->deadline_ms > (uint64_t) asked && (uint64_t) zclock_time () <= reply->deadline_ms + 100);
    cv_envelope_destroy (&reply);

    /* a confident text never reaches the LLM */
    size_t before = fake_llm_request_count (fake);
    intent = s_intent_of (harness, "I want to start using my card.", 5000, &reply);
    assert (intent->method == CONVEYOR__V1__INTENT__METHOD__MODEL);
    cv_envelope_destroy (&reply);
    assert (fake_llm_request_count (fake) == before);

    zactor_destroy (&worker);
    harness_destroy (&harness);
    cv_config_destroy (&agent);
    fake_llm_destroy (&fake);
    unsetenv ("CONVEYOR_LLM_BASE_URL");
    unsetenv ("CONVEYOR_LLM_MODEL");
}

/* The LLM prices of the budget scenarios: 0.002 units (2,000 micros) per 1,000 prompt tokens and
   0.004 (4,000) per 1,000 completion tokens; max_tokens stays 256. */
#define PRICES "\nllm:\n  price_prompt_per_1k: 0.002\n  price_completion_per_1k: 0.004\n"

/* The most the index-th request the fake got could have cost at those prices: every byte of its
   messages' contents a prompt token (2 micros each) and 256 completion tokens (1,024 micros). */
static uint64_t
s_worst_of (fake_llm_t *fake, size_t index)
{
    json_t *record = fake_llm_request (fake, index);
    assert (record);
    uint64_t bytes = 0;
    size_t i;
    json_t *message;
    json_array_foreach (json_object_get (record, "messages"), i, message)
        bytes += strlen (json_string_value (json_object_get (message, "content")));
    json_decref (record);
    assert (bytes > 0);
    return bytes * 2 + 1024;
}

/* Asserts the LLM was asked for intent's request and spent prompt and completion tokens, cost micros. */
static void
s_expect_spend (const Conveyor__V1__Intent *intent, uint64_t prompt, uint64_t completion, uint64_t cost)
{
    assert (intent->spend);
    cv_assert_that (intent->spend->prompt_tokens == prompt && intent->spend->completion_tokens == completion
                        && intent->spend->cost_micros == cost && !intent->spend->over_budget,
                    "spend: %llu + %llu tokens, %llu micros, over_budget %d",
                    (unsigned long long) intent->spend->prompt_tokens,
                    (unsigned long long) intent->spend->completion_tokens,
                    (unsigned long long) intent->spend->cost_micros, intent->spend->over_budget);
}

/* The request's budget against the stand-in LLM server, whose journal shows what it was asked:
   without a budget the LLM is asked as before and Intent.spend tells its usage at the prices; a
   budget a micro short of the call's worst case keeps the request from the LLM (the model's
   guess, over_budget); a budget of exactly the worst case lets it through. */
static void
s_budget_scenarios (cv_log_t *log, cv_settings_t *settings)
{
    fake_llm_t *fake = fake_llm_new (0, false);
    assert (fake);
    setenv ("CONVEYOR_LLM_BASE_URL", fake_llm_base_url (fake), 1);
    setenv ("CONVEYOR_LLM_MODEL", "stand-in", 1);
    cv_error_t err;
    char *text = harness_agent_text (PRICES);
    cv_config_t *agent = cv_config_parse ("bank-agent.yaml", text, &err);
    assert (agent);
    cv_launcher_args_t args = {.agent = agent, .settings = settings};
    harness_t *harness = harness_new ();
    cv_worker_config_t config = s_config (log, &args);
    zactor_t *worker = harness_start_worker (harness, &config);
    const char *vague = "what is your favourite colour";
    const fake_llm_step_t answer = {
        .mode = FAKE_LLM_OK, .text = "{\"intent\": \"card_arrival\"}", .prompt_tokens = 1200, .completion_tokens = 30};
    /* 1,200 tokens at 2,000 micros per 1,000, and 30 at 4,000 */
    const uint64_t cost = 2400 + 120;

    /* (c) no budget: asked, as before, and the spend told */
    fake_llm_push (fake, &answer);
    cv_envelope_t *reply;
    Conveyor__V1__Intent *intent = s_intent_of (harness, vague, 5000, &reply);
    assert (streq (intent->name, "card_arrival") && intent->method == CONVEYOR__V1__INTENT__METHOD__LLM);
    s_expect_spend (intent, 1200, 30, cost);
    assert (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_INTENT), 0, &err) == 0);
    cv_envelope_destroy (&reply);
    assert (fake_llm_request_count (fake) == 1);
    uint64_t worst = s_worst_of (fake, 0);
    assert (worst > cost);

    /* (b) a micro short of the worst case: the fake gets no request, the intent is the model's
       guess, and the spend says over_budget with nothing spent */
    Conveyor__V1__Budget budget = CONVEYOR__V1__BUDGET__INIT;
    budget.cost_micros_left = worst - 1;
    fake_llm_push (fake, &answer);
    reply = s_ask_within (harness, vague, 5000, &budget);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_INTENT);
    intent = reply->intent;
    assert (intent->method == CONVEYOR__V1__INTENT__METHOD__FALLBACK && intent->low_confidence);
    assert (intent->n_candidates == 5 && streq (intent->candidates[0]->name, intent->name));
    assert (intent->spend && intent->spend->over_budget);
    assert (intent->spend->prompt_tokens == 0 && intent->spend->completion_tokens == 0
            && intent->spend->cost_micros == 0);
    assert (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_INTENT), 0, &err) == 0);
    cv_envelope_destroy (&reply);
    assert (fake_llm_request_count (fake) == 1 && fake_llm_pending (fake) == 1);
    budget.cost_micros_left = 0;
    reply = s_ask_within (harness, vague, 5000, &budget);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_INTENT && reply->intent->spend->over_budget);
    cv_envelope_destroy (&reply);
    assert (fake_llm_request_count (fake) == 1);

    /* (a) exactly the worst case, and plenty: asked (the answer the fake kept), its usage at the prices */
    budget.cost_micros_left = worst;
    reply = s_ask_within (harness, vague, 5000, &budget);
    intent = reply->intent;
    assert (streq (intent->name, "card_arrival") && intent->method == CONVEYOR__V1__INTENT__METHOD__LLM);
    s_expect_spend (intent, 1200, 30, cost);
    cv_envelope_destroy (&reply);
    assert (fake_llm_request_count (fake) == 2 && s_worst_of (fake, 1) == worst);
    budget.cost_micros_left = 1000000;
    fake_llm_push (fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK,
                                            .text = "{\"intent\": \"card_arrival\"}",
                                            .prompt_tokens = 900,
                                            .completion_tokens = 8});
    reply = s_ask_within (harness, vague, 5000, &budget);
    s_expect_spend (reply->intent, 900, 8, 1800 + 32);
    cv_envelope_destroy (&reply);

    /* an answer without usage is charged the worst case; a failed call costs nothing */
    fake_llm_push (fake,
                   &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "{\"intent\": \"card_arrival\"}", .no_usage = true});
    reply = s_ask_within (harness, vague, 5000, &budget);
    assert (reply->intent->method == CONVEYOR__V1__INTENT__METHOD__LLM);
    s_expect_spend (reply->intent, 0, 0, worst);
    cv_envelope_destroy (&reply);
    fake_llm_set_default (fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 400});
    reply = s_ask_within (harness, vague, 5000, &budget);
    assert (reply->intent->method == CONVEYOR__V1__INTENT__METHOD__FALLBACK);
    s_expect_spend (reply->intent, 0, 0, 0);
    cv_envelope_destroy (&reply);
    assert (fake_llm_request_count (fake) == 5);

    /* the LLM not needed: no spend, whatever the budget */
    budget.cost_micros_left = 0;
    reply = s_ask_within (harness, "I want to start using my card.", 5000, &budget);
    assert (reply->intent->method == CONVEYOR__V1__INTENT__METHOD__MODEL && !reply->intent->spend);
    cv_envelope_destroy (&reply);
    reply = s_ask_within (harness, "I lost my card", 5000, &budget);
    assert (reply->intent->method == CONVEYOR__V1__INTENT__METHOD__RULE && !reply->intent->spend);
    cv_envelope_destroy (&reply);
    assert (fake_llm_request_count (fake) == 5);

    zactor_destroy (&worker);
    harness_destroy (&harness);
    cv_config_destroy (&agent);
    free (text);
    fake_llm_destroy (&fake);
    unsetenv ("CONVEYOR_LLM_BASE_URL");
    unsetenv ("CONVEYOR_LLM_MODEL");
}

int
main (void)
{
    cv_error_t err;
    cv_log_t *log = cv_log_new (INTENT_SERVER_SERVICE, "test-1", false);
    /* The demo model the build trained, named as an operator would: --intent-model. */
    cv_settings_t *settings =
        cv_settings_new ("conveyor-intent", "test", intent_server_settings, intent_server_settings_count);
    char *model_argv[] = {"conveyor-intent", "--intent-model", CONVEYOR_DEMO_MODEL, NULL};
    assert (cv_settings_load (settings, 3, model_argv, &err) == 0);
    cv_config_t *agent = cv_config_load (CONVEYOR_SOURCE_DIR "/deploy/config/bank-agent.yaml", &err);
    assert (agent);
    cv_launcher_args_t args = {.agent = agent, .settings = settings};
    harness_t *harness = harness_new ();
    cv_worker_config_t config = s_config (log, &args);
    zactor_t *worker = harness_start_worker (harness, &config);

    /* good traffic: several intents, slots, the fallback */
    s_expect_intent (harness, "I lost my card ending 4417", "lost_or_stolen_card", "lost_or_stolen_card:1",
                     "card_last4", "4417");
    s_expect_intent (harness, "I was charged twice for my coffee", "transaction_charged_twice",
                     "transaction_charged_twice:1", NULL, NULL);
    s_expect_intent (harness, "What is the exchange rate for USD?", "exchange_rate", "model", "currency", "USD");
    s_expect_intent (harness, "My top-up failed, what happened?", "top_up_failed", "model", NULL, NULL);
    s_expect_intent (harness, "I'm still waiting for my new card", "card_arrival", "model", NULL, NULL);
    s_expect_intent (harness, "what is your favourite colour", NULL, NULL, NULL, NULL);
    s_expect_intent (harness, "\xf0\x9f\x92\xb3 I was charged twice \xf0\x9f\x98\xa2", "transaction_charged_twice",
                     "transaction_charged_twice:1", NULL, NULL);

    /* a frame that is not an Envelope */
    cv_envelope_t *reply = harness_request_raw (harness, "\x0a\xff\xff\xff garbage", 12, 5000);
    harness_expect_error (reply, CV_ERR_MALFORMED, NULL, "not a conveyor.v1.Envelope");
    cv_envelope_destroy (&reply);
    s_expect_intent (harness, "My card was stolen", "lost_or_stolen_card", "model", NULL, NULL);

    /* a body the intent worker does not take: a DecideRequest */
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *wrong = harness_envelope (arena, 5000);
    cv_envelope_set_decide_request (wrong, arena)->user_id = "cust-1";
    reply = harness_request (harness, wrong, 5000);
    harness_expect_error (reply, CV_ERR_WRONG_BODY, "body", "decide_request");
    cv_envelope_destroy (&reply);
    cv_arena_destroy (&arena);

    /* an over-long text, invalid UTF-8, an empty text, a passed deadline */
    char *long_text = cv_malloc (CV_TEXT_MAX_BYTES + 2);
    memset (long_text, 'x', CV_TEXT_MAX_BYTES + 1);
    long_text[CV_TEXT_MAX_BYTES + 1] = '\0';
    reply = s_ask (harness, long_text, 5000);
    harness_expect_error (reply, CV_ERR_INVALID, "intent_request.text", "over the limit");
    cv_envelope_destroy (&reply);
    /* the longest text allowed is classified */
    const char *tail = " I was charged twice";
    memcpy (long_text + CV_TEXT_MAX_BYTES - strlen (tail), tail, strlen (tail));
    long_text[CV_TEXT_MAX_BYTES] = '\0';
    s_expect_intent (harness, long_text, "transaction_charged_twice", "transaction_charged_twice:1", NULL, NULL);
    free (long_text);
    reply = s_ask (harness, "caf\xc3", 5000);
    harness_expect_error (reply, CV_ERR_INVALID, "intent_request.text", "UTF-8");
    cv_envelope_destroy (&reply);
    reply = s_ask (harness, "", 5000);
    harness_expect_error (reply, CV_ERR_INVALID, "intent_request.text", "required");
    cv_envelope_destroy (&reply);
    reply = s_ask (harness, "I lost my card", -10);
    harness_expect_error (reply, CV_ERR_DEADLINE_EXCEEDED, "deadline_ms", "deadline passed");
    cv_envelope_destroy (&reply);

    /* and the worker keeps serving */
    s_expect_intent (harness, "Can I get a refund?", "request_refund", "model", NULL, NULL);

    /* a probe on the control endpoint runs the canned check */
    char *control = harness_control_endpoint (worker);
    reply = harness_probe (control, 5000);
    assert (reply && reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT);
    cv_assert_that (reply->probe_result->ok, "probe failed: %s", reply->probe_result->detail);
    assert (streq (reply->probe_result->service, INTENT_SERVER_SERVICE));
    assert (streq (reply->probe_result->instance, "test-1"));
    cv_envelope_destroy (&reply);
    zstr_free (&control);
    s_expect_intent (harness, "My transfer is still pending", "pending_transfer", "model", NULL, NULL);

    zactor_destroy (&worker);
    harness_destroy (&harness);
    cv_config_destroy (&agent);

    s_llm_scenarios (log, settings);
    s_budget_scenarios (log, settings);

    /* an agent file with a broken pattern: the worker does not start, and says where */
    agent = cv_config_parse ("broken.yaml",
                             "intents:\n"
                             "  lost_or_stolen_card:\n"
                             "    patterns:\n"
                             "      - '(?i)\\blost\\b'\n"
                             "      - '(?i)\\bcard\\b.{0,40}\\b(stolen'\n",
                             &err);
    assert (agent);
    args.agent = agent;
    config = s_config (log, &args);
    harness_expect_no_start (&config,
                             "broken.yaml:5: intents.lost_or_stolen_card.patterns: pattern 2 does not compile");
    cv_config_destroy (&agent);

    cv_settings_destroy (&settings);
    cv_log_destroy (&log);
    printf ("intent isolation: ok\n");
    return 0;
}
