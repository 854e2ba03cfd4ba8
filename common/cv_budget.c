/* Cost budgets in micros: reservations, saturating sums and the conversions from configured
   units. */
#include "cv_budget.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void
cv_budget_from_wire (cv_budget_t *self, const Conveyor__V1__Budget *wire)
{
    assert (self);
    *self = (cv_budget_t){.limited = wire != NULL, .left = wire ? wire->cost_micros_left : 0};
}

void
cv_budget_limit (cv_budget_t *self, uint64_t left)
{
    assert (self);
    *self = (cv_budget_t){.limited = true, .left = left};
}

bool
cv_budget_reserve (cv_budget_t *self, uint64_t micros)
{
    assert (self);
    if (self->limited) {
        if (micros > self->left)
            return false;
        self->left -= micros;
    }
    self->spent = cv_budget_add (self->spent, micros);
    return true;
}

void
cv_budget_release (cv_budget_t *self, uint64_t micros)
{
    assert (self && micros <= self->spent);
    self->spent -= micros;
    if (self->limited)
        self->left = cv_budget_add (self->left, micros);
}

bool
cv_budget_settle (cv_budget_t *self, uint64_t reserved, uint64_t cost)
{
    if (cost <= reserved) {
        cv_budget_release (self, reserved - cost);
        return true;
    }
    if (!cv_budget_reserve (self, cost - reserved))
        (void) cv_budget_reserve (self, self->left); /* all that is left, which always fits */
    return false;
}

uint64_t
cv_budget_add (uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t
cv_budget_multiply (uint64_t a, uint64_t b)
{
    return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

uint64_t
cv_budget_micros (double units)
{
    assert (units >= 0 && units <= CV_BUDGET_MAX_UNITS);
    return (uint64_t) llround (units * CV_BUDGET_MICROS_PER_UNIT);
}

uint64_t
cv_budget_token_cost (uint64_t tokens, uint64_t price_per_1k)
{
    uint64_t product = cv_budget_multiply (tokens, price_per_1k);
    if (product == UINT64_MAX)
        return UINT64_MAX;
    return product / 1000 + (product % 1000 != 0);
}

void
cv_budget_format (uint64_t micros, char text[CV_BUDGET_TEXT_BYTES])
{
    snprintf (text, CV_BUDGET_TEXT_BYTES, "%" PRIu64 ".%06" PRIu64, micros / CV_BUDGET_MICROS_PER_UNIT,
              micros % CV_BUDGET_MICROS_PER_UNIT);
}

void
cv_budget_test (bool verbose)
{
    /* Reservations: what fits is taken, what does not changes nothing, a release gives back. */
    cv_budget_t budget;
    cv_budget_limit (&budget, 1000);
    assert (cv_budget_reserve (&budget, 400) && budget.left == 600 && budget.spent == 400);
    assert (!cv_budget_reserve (&budget, 601) && budget.left == 600 && budget.spent == 400);
    assert (cv_budget_reserve (&budget, 600) && budget.left == 0 && budget.spent == 1000);
    assert (cv_budget_reserve (&budget, 0)); /* a free call fits even an empty budget */
    assert (!cv_budget_reserve (&budget, 1));
    cv_budget_release (&budget, 250);
    assert (budget.left == 250 && budget.spent == 750);
    assert (cv_budget_reserve (&budget, 250) && budget.left == 0);

    /* Settling: what a spend did not use comes back; what it overran comes out of what is left,
       as far as it goes. */
    cv_budget_limit (&budget, 100);
    assert (cv_budget_reserve (&budget, 60) && cv_budget_settle (&budget, 60, 20));
    assert (budget.left == 80 && budget.spent == 20);
    assert (cv_budget_reserve (&budget, 60) && cv_budget_settle (&budget, 60, 60));
    assert (budget.left == 20 && budget.spent == 80);
    cv_budget_limit (&budget, 100);
    assert (cv_budget_reserve (&budget, 60) && !cv_budget_settle (&budget, 60, 70));
    assert (budget.left == 30 && budget.spent == 70);
    cv_budget_limit (&budget, 100);
    assert (cv_budget_reserve (&budget, 60) && !cv_budget_settle (&budget, 60, 500));
    assert (budget.left == 0 && budget.spent == 100);
    cv_budget_from_wire (&budget, NULL);
    assert (cv_budget_reserve (&budget, 60) && !cv_budget_settle (&budget, 60, 500) && budget.spent == 500);

    /* No budget on the wire: everything fits, and is still counted. */
    cv_budget_from_wire (&budget, NULL);
    assert (!budget.limited && cv_budget_reserve (&budget, UINT64_MAX - 1) && cv_budget_reserve (&budget, 5));
    assert (budget.spent == UINT64_MAX);
    Conveyor__V1__Budget wire = CONVEYOR__V1__BUDGET__INIT;
    wire.cost_micros_left = 7;
    cv_budget_from_wire (&budget, &wire);
    assert (budget.limited && budget.left == 7 && budget.spent == 0);
    wire.cost_micros_left = 0; /* a budget spent to the last micro is still a budget */
    cv_budget_from_wire (&budget, &wire);
    assert (budget.limited && !cv_budget_reserve (&budget, 1));

    /* Saturation: nothing wraps to a small number that would fit. */
    assert (cv_budget_add (UINT64_MAX - 1, 1) == UINT64_MAX && cv_budget_add (UINT64_MAX, UINT64_MAX) == UINT64_MAX);
    assert (cv_budget_add (2, 3) == 5);
    assert (cv_budget_multiply (UINT64_MAX / 2 + 1, 2) == UINT64_MAX && cv_budget_multiply (0, UINT64_MAX) == 0);
    assert (cv_budget_multiply (3, 4) == 12);

    /* Units to micros, to the nearest. */
    assert (cv_budget_micros (0) == 0 && cv_budget_micros (1) == 1000000);
    assert (cv_budget_micros (0.0025) == 2500 && cv_budget_micros (0.0000004) == 0
            && cv_budget_micros (0.0000006) == 1);
    assert (cv_budget_micros (CV_BUDGET_MAX_UNITS) == 1000000000000ULL);

    /* Tokens: 1,234 tokens at 0.5 units per 1,000 = 0.617 units; a part of a micro is a micro. */
    assert (cv_budget_token_cost (1234, cv_budget_micros (0.5)) == 617000);
    assert (cv_budget_token_cost (1, 1) == 1 && cv_budget_token_cost (1000, 1) == 1
            && cv_budget_token_cost (1001, 1) == 2);
    assert (cv_budget_token_cost (0, 5) == 0 && cv_budget_token_cost (5, 0) == 0);
    assert (cv_budget_token_cost (UINT64_MAX, 2) == UINT64_MAX);

    char text[CV_BUDGET_TEXT_BYTES];
    cv_budget_format (2500, text);
    assert (strcmp (text, "0.002500") == 0);
    cv_budget_format (12000001, text);
    assert (strcmp (text, "12.000001") == 0);
    cv_budget_format (UINT64_MAX, text);
    assert (strcmp (text, "18446744073709.551615") == 0);
    if (verbose)
        printf ("cv_budget: ok\n");
}
