/* Money for a request's cost budget, in micros: millionths of the agent's cost unit, the unit its
   LLM prices (per 1,000 tokens) and its tools' costs (per call) are written in. Whole numbers, so
   that sums are exact and a budget compares the same on every process.

   A worker holds the budget its stage may spend (the Envelope's Budget, cv_budget_from_wire) and
   reserves each spend before it starts: an LLM call its worst case (every prompt byte a token and
   max_tokens answered), a tool call its cost. What does not fit is not started. A reservation
   that cost less than reserved gives the rest back (cv_budget_release).

   The arithmetic saturates: a sum or product that would wrap stays at UINT64_MAX, which no budget
   fits. Plain data, no I/O, one thread. */
#ifndef CV_BUDGET_H
#define CV_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conveyor/v1/conveyor.pb-c.h"

#define CV_BUDGET_MICROS_PER_UNIT 1000000
/* The most a configured cost may be, in units (prices and tool costs, and a request's budget). */
#define CV_BUDGET_MAX_UNITS 1e6

typedef struct {
    bool limited;   /* false: no budget, every reservation fits */
    uint64_t left;  /* micros still free, when limited */
    uint64_t spent; /* micros reserved and not released */
} cv_budget_t;

/* The budget a stage got: wire (the Envelope's budget) or NULL, which is none. */
void cv_budget_from_wire (cv_budget_t *self, const Conveyor__V1__Budget *wire);
/* A budget of left micros. */
void cv_budget_limit (cv_budget_t *self, uint64_t left);

/* Reserves micros: true, counted as spent, when they fit what is left (always, without a
   limit); false, and nothing changes, when they do not. */
bool cv_budget_reserve (cv_budget_t *self, uint64_t micros);
/* Gives back micros of what was reserved (at most what was spent). */
void cv_budget_release (cv_budget_t *self, uint64_t micros);

/* Settles a spend reserved at reserved micros that cost cost: gives back what it did not spend.
   A spend that cost more (an LLM provider counting more prompt tokens than the worst case
   reckoned) takes the excess from what is left, as far as it goes. True when the cost stayed
   within the reservation. */
bool cv_budget_settle (cv_budget_t *self, uint64_t reserved, uint64_t cost);

uint64_t cv_budget_add (uint64_t a, uint64_t b);
uint64_t cv_budget_multiply (uint64_t a, uint64_t b);

/* units (a configured amount, 0..CV_BUDGET_MAX_UNITS) in micros, to the nearest. */
uint64_t cv_budget_micros (double units);
/* What tokens cost at price_per_1k micros per 1,000 tokens, rounded up: a token is never free
   when its price is not. */
uint64_t cv_budget_token_cost (uint64_t tokens, uint64_t price_per_1k);

/* The bytes cv_budget_format writes at most, its NUL included. */
#define CV_BUDGET_TEXT_BYTES 32
/* micros as units with six decimals ("0.002500"), into text. */
void cv_budget_format (uint64_t micros, char text[CV_BUDGET_TEXT_BYTES]);

void cv_budget_test (bool verbose);

#endif
