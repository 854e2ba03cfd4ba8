/* A service's settings: one table of (name, type, default, limits, help), read from the command
   line and the environment in one place, with --help generated from the table.

   A setting named "broker-endpoint" is set by --broker-endpoint VALUE or the environment variable
   CONVEYOR_BROKER_ENDPOINT; the flag wins over the environment, which wins over the default. */
#ifndef CV_SETTINGS_H
#define CV_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_error.h"
#include "cv_log.h"

typedef enum { CV_SETTING_STRING, CV_SETTING_INT, CV_SETTING_BOOL } cv_setting_type_t;

typedef struct {
    const char *name;
    cv_setting_type_t type;
    const char *fallback; /* the default, as text; NULL for none */
    long min, max;        /* for CV_SETTING_INT */
    const char *help;
} cv_setting_t;

/* A setting bound to a field of a plain configuration struct, where cv_settings_bind writes its
   effective value: a STRING as a const char * (borrowed from the settings), an INT as an int, a
   BOOL as a bool. offset is CV_SETTING_FIELD (struct, member, C type) or CV_SETTING_UNBOUND. */
typedef struct {
    cv_setting_t setting;
    size_t offset;
} cv_setting_field_t;

#define CV_SETTING_UNBOUND SIZE_MAX
/* offsetof (type, member), refused at compile time when member is not of type ctype. */
#define CV_SETTING_FIELD(type, member, ctype)                                                                          \
    (offsetof (type, member) + 0 * sizeof (_Generic(((type *) 0)->member, ctype : 1)))

typedef struct _cv_settings_t cv_settings_t;

/* table (count entries) is borrowed and must outlive the settings. */
cv_settings_t *cv_settings_new (const char *program, const char *summary, const cv_setting_t *table, size_t count);
void cv_settings_destroy (cv_settings_t **self_p);

/* Reads argv and the environment. Returns 0 when loaded, 1 when --help was asked (and printed to
   stdout), -1 with err for an unknown flag, a missing value or a value out of its limits.
   Positional arguments are kept, in order. */
int cv_settings_load (cv_settings_t *self, int argc, char **argv, cv_error_t *err) CV_MUST_CHECK;

/* True when the table has a setting called name. */
bool cv_settings_has (const cv_settings_t *self, const char *name);
const char *cv_settings_string (const cv_settings_t *self, const char *name);
long cv_settings_int (const cv_settings_t *self, const char *name);
bool cv_settings_bool (const cv_settings_t *self, const char *name);
size_t cv_settings_positional_count (const cv_settings_t *self);
const char *cv_settings_positional (const cv_settings_t *self, size_t index);

/* Writes each of the count fields' effective values into target (a struct of the fields' type) at
   its offset; unbound ones are skipped. Each field's setting must be in self's table (asserted).
   Strings are borrowed from self and live as long as it does. */
void cv_settings_bind (const cv_settings_t *self, const cv_setting_field_t *fields, size_t count, void *target);

/* The value of the environment variable a configuration file names for a secret (an API key),
   borrowed, or NULL when unset; never logged. The one read of the environment outside a table. */
const char *cv_settings_secret (const char *variable);

/* value with the secrets a URL may carry replaced by ***: the password of user:password@, and
   query parameters whose name has key, token, secret, password or signature in it. out holds
   size bytes. */
void cv_settings_mask (const char *value, char *out, size_t size);

/* Logs the effective settings, secrets masked as cv_settings_mask does. */
void cv_settings_log (const cv_settings_t *self, cv_log_t *log);

/* Writes the usage text to stdout. */
void cv_settings_usage (const cv_settings_t *self);

void cv_settings_test (bool verbose);

#endif
