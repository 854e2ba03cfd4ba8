/* The intent model's confidence map, fitted on out-of-fold predictions: the isotonic regression
   (pool adjacent violators) of "the best label was right" on the margin between the two best
   scores, its blocks' mean margins and accuracies as the knots. Isotonic, so a larger margin
   never means a lower confidence. */
#ifndef LEARN_CALIBRATION_H
#define LEARN_CALIBRATION_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_error.h"
#include "intent_model.h"

/* Fits the map on count predictions (count > 0): their margins and whether each was right, and
   sets it on model (intent_model_set_calibration). Returns the number of knots, or 0 with err. */
size_t learn_calibration_fit (intent_model_t *model, const float *margins, const bool *correct, size_t count,
                              cv_error_t *err);

void learn_calibration_test (bool verbose);

#endif
