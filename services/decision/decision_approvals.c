/* Which actions wait for a person's approval: the agent file's `approvals` section. */
#include "decision_approvals.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_envelope.h"
#include "decision_rules.h"

static const char *const s_keys[] = {"kinds", "amount_above", NULL};

struct _decision_approvals_t {
    char **kinds; /* owned; these always wait */
    size_t kind_count;
    bool by_amount;      /* amount_above was given */
    double amount_above; /* positive, when by_amount */
};

/* node, or fallback when node has no line of its own (an empty map or list). */
static cv_node_t *
s_at (cv_node_t *node, cv_node_t *fallback)
{
    return cv_node_line (node) ? node : fallback;
}

static int
s_load_kinds (decision_approvals_t *self, const cv_config_t *config, cv_node_t *section, cv_node_t *actions,
              cv_error_t *err)
{
    cv_node_t *node = cv_node_get (section, "kinds");
    if (!node)
        return 0;
    if (!cv_node_is_list (node) || cv_node_count (node) == 0)
        return cv_config_fail (config, s_at (node, section), "approvals.kinds", err,
                               "must be a non-empty list of action kinds");
    size_t count = cv_node_count (node);
    self->kinds = cv_calloc (count, sizeof *self->kinds);
    for (size_t i = 0; i < count; i++) {
        cv_node_t *item = cv_node_item (node, i);
        const char *kind = cv_node_text (item);
        char path[64];
        snprintf (path, sizeof path, "approvals.kinds.%zu", i);
        if (!kind || !cv_name_valid (kind))
            return cv_config_fail (config, s_at (item, node), path, err,
                                   "must be an action kind, 1..%d of " CV_NAME_CHARS, CV_NAME_MAX_BYTES);
        /* A kind the executor does not know is a typo: nothing of that kind would ever wait. */
        if (actions && !cv_node_get (actions, kind))
            return cv_config_fail (config, item, path, err, "'%s' is not one of the agent's actions", kind);
        self->kinds[self->kind_count++] = cv_strdup (kind);
    }
    return 0;
}

static int
s_load_amount (decision_approvals_t *self, const cv_config_t *config, cv_node_t *section, cv_error_t *err)
{
    cv_node_t *node = cv_node_get (section, "amount_above");
    if (!node)
        return 0;
    /* Only a number the file wrote as one: "100" in quotes is text, not a limit. */
    json_t *value = cv_node_is_scalar (node) ? cv_node_to_json (node) : NULL;
    bool ok = json_is_number (value) && isfinite (json_number_value (value)) && json_number_value (value) > 0;
    double limit = ok ? json_number_value (value) : 0;
    json_decref (value);
    if (!ok)
        return cv_config_fail (config, s_at (node, section), "approvals.amount_above", err,
                               "must be a positive number: an action whose amount is above it waits");
    self->by_amount = true;
    self->amount_above = limit;
    return 0;
}

decision_approvals_t *
decision_approvals_new (cv_config_t *config, cv_error_t *err)
{
    assert (config);
    decision_approvals_t *self = cv_calloc (1, sizeof *self);
    cv_node_t *root = cv_config_root (config);
    cv_node_t *section = cv_node_get (root, "approvals");
    if (!section)
        return self;
    /* Kinds name the executor's actions; when the file has that section, a typo is caught here. */
    cv_node_t *actions = cv_node_get (root, "actions");
    if (actions && !cv_node_is_map (actions))
        actions = NULL;
    int rc = cv_config_known_keys (config, section, "approvals", s_keys, err);
    if (rc == 0 && cv_node_count (section) == 0)
        rc = cv_config_fail (config, s_at (section, root), "approvals", err,
                             "must name kinds, amount_above or both (without the section, nothing waits)");
    if (rc == 0)
        rc = s_load_kinds (self, config, section, actions, err);
    if (rc == 0)
        rc = s_load_amount (self, config, section, err);
    if (rc)
        decision_approvals_destroy (&self);
    return self;
}

void
decision_approvals_destroy (decision_approvals_t **self_p)
{
    assert (self_p);
    decision_approvals_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->kind_count; i++)
        free (self->kinds[i]);
    free (self->kinds);
    free (self);
    *self_p = NULL;
}

bool
decision_approvals_needed (const decision_approvals_t *self, const char *kind, const json_t *params)
{
    assert (self && kind);
    for (size_t i = 0; i < self->kind_count; i++)
        if (strcmp (self->kinds[i], kind) == 0)
            return true;
    if (!self->by_amount)
        return false;
    const json_t *amount = json_object_get (params, "amount");
    if (!amount)
        return false;
    double number;
    if (!decision_value_number (amount, &number))
        return true; /* an amount no one can read: a person decides */
    return number > self->amount_above;
}

/*  --------------------------------------------------------------------------
    Self-test */

static decision_approvals_t *
s_parse (const char *text, cv_error_t *err)
{
    cv_config_t *config = cv_config_parse ("test.yaml", text, err);
    assert (config);
    decision_approvals_t *approvals = decision_approvals_new (config, err);
    cv_config_destroy (&config);
    return approvals;
}

static void
s_expect_load_error (const char *text, const char *expected, bool verbose)
{
    cv_error_t err;
    decision_approvals_t *approvals = s_parse (text, &err);
    cv_assert_that (!approvals && strstr (err.message, expected),
                    "decision_approvals: expected load error '%s', got '%s'", expected,
                    approvals ? "success" : err.message);
    if (verbose)
        printf ("  %s\n", err.message);
}

/* Whether an action of kind with params (a JSON text, NULL for none) waits. */
static bool
s_needed (const decision_approvals_t *approvals, const char *kind, const char *params)
{
    json_t *value = params ? json_loads (params, 0, NULL) : NULL;
    assert (!params || value);
    bool needed = decision_approvals_needed (approvals, kind, value);
    json_decref (value);
    return needed;
}

void
decision_approvals_test (bool verbose)
{
    cv_error_t err;
    /* no section: nothing waits, whatever its kind or amount */
    decision_approvals_t *approvals = s_parse ("policies: []\n", &err);
    assert (approvals);
    assert (!s_needed (approvals, "refund_transaction", "{\"amount\": \"9000.00\"}"));
    assert (!s_needed (approvals, "cancel_transfer", NULL));
    assert (!s_needed (approvals, "refund_transaction", "{\"amount\": \"lots\"}"));
    decision_approvals_destroy (&approvals);
    assert (!approvals);
    decision_approvals_destroy (&approvals);

    /* kinds and an amount: a kind always waits, an amount above the limit waits, at it does not */
    approvals = s_parse ("actions:\n  refund_transaction: {}\n  cancel_transfer: {}\n  freeze_card: {}\n"
                         "approvals:\n  kinds: [cancel_transfer]\n  amount_above: 100\n",
                         &err);
    cv_assert_that (approvals, "decision_approvals: %s", err.message);
    assert (s_needed (approvals, "cancel_transfer", NULL));
    assert (s_needed (approvals, "cancel_transfer", "{\"transfer_id\": \"tr-1\"}"));
    assert (s_needed (approvals, "cancel_transfer", "{\"amount\": \"1.00\"}"));
    assert (!s_needed (approvals, "freeze_card", "{\"card_id\": \"card-7\"}"));
    assert (!s_needed (approvals, "freeze_card", NULL));
    assert (s_needed (approvals, "refund_transaction", "{\"amount\": \"100.01\"}"));
    assert (!s_needed (approvals, "refund_transaction", "{\"amount\": \"100.00\"}"));
    assert (!s_needed (approvals, "refund_transaction", "{\"amount\": \"23.47\"}"));
    assert (s_needed (approvals, "refund_transaction", "{\"amount\": 250}"));
    assert (!s_needed (approvals, "refund_transaction", "{\"amount\": 18.9}"));
    /* an amount no one can read waits: when in doubt, a person decides */
    assert (s_needed (approvals, "refund_transaction", "{\"amount\": \"12,50\"}"));
    assert (s_needed (approvals, "refund_transaction", "{\"amount\": \"1e9\"}"));
    assert (s_needed (approvals, "refund_transaction", "{\"amount\": \"\"}"));
    assert (s_needed (approvals, "refund_transaction", "{\"amount\": null}"));
    assert (s_needed (approvals, "refund_transaction", "{\"amount\": [5]}"));
    assert (s_needed (approvals, "refund_transaction", "{\"amount\": true}"));
    decision_approvals_destroy (&approvals);

    /* an amount alone, not whole, and without an actions section any kind name does */
    approvals = s_parse ("approvals: {amount_above: 99.5}\n", &err);
    cv_assert_that (approvals, "decision_approvals: %s", err.message);
    assert (s_needed (approvals, "refund_transaction", "{\"amount\": \"99.51\"}"));
    assert (!s_needed (approvals, "refund_transaction", "{\"amount\": \"99.50\"}"));
    assert (!s_needed (approvals, "cancel_transfer", NULL));
    decision_approvals_destroy (&approvals);
    /* kinds alone: an amount, readable or not, does not matter */
    approvals = s_parse ("approvals:\n  kinds: [cancel_transfer, order_replacement_card]\n", &err);
    cv_assert_that (approvals, "decision_approvals: %s", err.message);
    assert (s_needed (approvals, "order_replacement_card", NULL));
    assert (!s_needed (approvals, "refund_transaction", "{\"amount\": \"9000.00\"}"));
    assert (!s_needed (approvals, "refund_transaction", "{\"amount\": \"lots\"}"));
    decision_approvals_destroy (&approvals);

    /* mistakes name the file, the line and the key */
    s_expect_load_error ("approvals:\n  amount_over: 100\n", "test.yaml:2: approvals.amount_over: unknown key",
                         verbose);
    s_expect_load_error ("approvals: [cancel_transfer]\n", "test.yaml:1: approvals: must be a map", verbose);
    s_expect_load_error ("approvals: {}\n", "test.yaml:1: approvals: must name kinds, amount_above or both", verbose);
    s_expect_load_error ("approvals:\n  kinds: cancel_transfer\n",
                         "test.yaml:2: approvals.kinds: must be a non-empty list of action kinds", verbose);
    s_expect_load_error ("approvals:\n  kinds: []\n", "approvals.kinds: must be a non-empty list", verbose);
    s_expect_load_error ("approvals:\n  kinds:\n    - ok\n    - 'cancel transfer'\n",
                         "test.yaml:4: approvals.kinds.1: must be an action kind", verbose);
    s_expect_load_error ("approvals:\n  kinds:\n    - [a]\n", "test.yaml:3: approvals.kinds.0: must be an action kind",
                         verbose);
    s_expect_load_error ("actions:\n  cancel_transfer: {}\napprovals:\n  kinds: [cancel_transfers]\n",
                         "test.yaml:4: approvals.kinds.0: 'cancel_transfers' is not one of the agent's actions",
                         verbose);
    s_expect_load_error ("approvals:\n  amount_above: 0\n", "test.yaml:2: approvals.amount_above: must be a positive",
                         verbose);
    s_expect_load_error ("approvals:\n  amount_above: -5\n", "approvals.amount_above: must be a positive", verbose);
    s_expect_load_error ("approvals:\n  amount_above: lots\n", "approvals.amount_above: must be a positive", verbose);
    s_expect_load_error ("approvals:\n  amount_above: '100'\n", "approvals.amount_above: must be a positive", verbose);
    s_expect_load_error ("approvals:\n  amount_above: [100]\n", "approvals.amount_above: must be a positive", verbose);
    s_expect_load_error ("approvals:\n  amount_above: .inf\n", "approvals.amount_above: must be a positive", verbose);
    if (verbose)
        printf ("decision_approvals: ok\n");
}
