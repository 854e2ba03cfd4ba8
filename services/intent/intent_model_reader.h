/* The reader of the intent model's file (intent_model_file.h gives its layout): a model's bytes,
   from memory or from an open file, read in order a few kilobytes at a time, twice. The first
   pass checks the frame — the magic, the version, the size and the checksum of every byte; the
   second checks every count, name and number as it puts them into a new model, the weights
   straight into their rows. So a truncated, corrupted or foreign file is refused with a message
   saying which, never half-read, and the process never holds a copy of the file beside the
   model it makes. A file that changes between the passes is refused too. */
#ifndef INTENT_MODEL_READER_H
#define INTENT_MODEL_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cv_error.h"
#include "intent_model.h"

/* Reads the model of size bytes: from data (borrowed) when not NULL, else from file (borrowed,
   positioned at the model's first byte, which must be the file's first). A new model (the
   caller's), or NULL with err saying what is wrong; err does not name the file, the caller
   does. */
intent_model_t *intent_model_reader_read (const void *data, FILE *file, size_t size, cv_error_t *err) CV_MUST_CHECK;

void intent_model_reader_test (bool verbose);

#endif
