/* A service's settings: one table read from the command line and the environment in one place. */
#include "cv_settings.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cv_alloc.h"

#define MAX_POSITIONAL 16

struct _cv_settings_t {
    char *program;
    char *summary;
    const cv_setting_t *table;
    size_t count;
    char **values; /* effective value of each setting, owned, or NULL */
    char *positional[MAX_POSITIONAL];
    size_t positional_count;
};

cv_settings_t *
cv_settings_new (const char *program, const char *summary, const cv_setting_t *table, size_t count)
{
    cv_settings_t *self = cv_calloc (1, sizeof *self);
    self->program = cv_strdup (program);
    self->summary = cv_strdup (summary);
    self->table = table;
    self->count = count;
    self->values = cv_calloc (count ? count : 1, sizeof (char *));
    return self;
}

void
cv_settings_destroy (cv_settings_t **self_p)
{
    assert (self_p);
    cv_settings_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free (self->values[i]);
    for (size_t i = 0; i < self->positional_count; i++)
        free (self->positional[i]);
    free (self->values);
    free (self->program);
    free (self->summary);
    free (self);
    *self_p = NULL;
}

static void
s_env_name (const char *name, char *out, size_t size)
{
    size_t used = (size_t) snprintf (out, size, "CONVEYOR_");
    for (const char *c = name; *c && used + 1 < size; c++)
        out[used++] = *c == '-' ? '_' : (char) toupper ((unsigned char) *c);
    out[used] = '\0';
}

static int
s_index (const cv_settings_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->table[i].name, name) == 0)
            return (int) i;
    return -1;
}

/* A boolean's word: true, false, 1, 0. */
static bool
s_bool_word (const char *word)
{
    return strcmp (word, "true") == 0 || strcmp (word, "false") == 0 || strcmp (word, "1") == 0
           || strcmp (word, "0") == 0;
}

static int
s_check (const cv_setting_t *setting, const char *value, const char *source, cv_error_t *err)
{
    if (setting->type == CV_SETTING_INT) {
        char *end;
        errno = 0;
        long number = strtol (value, &end, 10);
        if (errno || end == value || *end)
            return cv_error_set (err, CV_ERR_INVALID, setting->name, "%s: %s is not a whole number", source, value);
        if (number < setting->min || number > setting->max)
            return cv_error_set (err, CV_ERR_INVALID, setting->name, "%s: %ld is outside %ld..%ld", source, number,
                                 setting->min, setting->max);
    } else if (setting->type == CV_SETTING_BOOL) {
        if (!s_bool_word (value))
            return cv_error_set (err, CV_ERR_INVALID, setting->name, "%s: %s is not true or false", source, value);
    }
    return 0;
}

static void
s_set (cv_settings_t *self, size_t index, const char *value)
{
    free (self->values[index]);
    self->values[index] = value ? cv_strdup (value) : NULL;
}

int
cv_settings_load (cv_settings_t *self, int argc, char **argv, cv_error_t *err)
{
    for (size_t i = 0; i < self->count; i++) {
        const cv_setting_t *setting = &self->table[i];
        char env[128];
        s_env_name (setting->name, env, sizeof env);
        const char *value = getenv (env);
        if (value && *value) {
            if (s_check (setting, value, env, err))
                return -1;
            s_set (self, i, value);
        } else
            s_set (self, i, setting->fallback);
    }
    for (int arg = 1; arg < argc; arg++) {
        const char *word = argv[arg];
        if (strcmp (word, "--help") == 0 || strcmp (word, "-h") == 0) {
            cv_settings_usage (self);
            return 1;
        }
        if (strncmp (word, "--", 2) != 0 || word[2] == '\0') {
            if (self->positional_count == MAX_POSITIONAL)
                return cv_error_set (err, CV_ERR_INVALID, NULL, "too many arguments");
            self->positional[self->positional_count++] = cv_strdup (word);
            continue;
        }
        const char *name = word + 2;
        const char *inline_value = strchr (name, '=');
        char key[64];
        size_t key_size = inline_value ? (size_t) (inline_value - name) : strlen (name);
        snprintf (key, sizeof key, "%.*s", (int) key_size, name);
        int index = s_index (self, key);
        if (index < 0)
            return cv_error_set (err, CV_ERR_INVALID, key, "unknown option --%s (see --help)", key);
        const cv_setting_t *setting = &self->table[index];
        const char *value;
        if (inline_value)
            value = inline_value + 1;
        else if (setting->type == CV_SETTING_BOOL && arg + 1 < argc && s_bool_word (argv[arg + 1]))
            value = argv[++arg]; /* --flag false is false, not --flag and a stray word */
        else if (setting->type == CV_SETTING_BOOL)
            value = "true";
        else if (arg + 1 < argc)
            value = argv[++arg];
        else
            return cv_error_set (err, CV_ERR_INVALID, key, "--%s needs a value", key);
        char source[80];
        snprintf (source, sizeof source, "--%s", key);
        if (s_check (setting, value, source, err))
            return -1;
        s_set (self, (size_t) index, value);
    }
    return 0;
}

bool
cv_settings_has (const cv_settings_t *self, const char *name)
{
    return s_index (self, name) >= 0;
}

const char *
cv_settings_string (const cv_settings_t *self, const char *name)
{
    int index = s_index (self, name);
    assert (index >= 0); /* a name not in the table is a bug */
    return self->values[index];
}

long
cv_settings_int (const cv_settings_t *self, const char *name)
{
    const char *value = cv_settings_string (self, name);
    return value ? strtol (value, NULL, 10) : 0;
}

bool
cv_settings_bool (const cv_settings_t *self, const char *name)
{
    const char *value = cv_settings_string (self, name);
    return value && (strcmp (value, "true") == 0 || strcmp (value, "1") == 0);
}

size_t
cv_settings_positional_count (const cv_settings_t *self)
{
    return self->positional_count;
}

const char *
cv_settings_positional (const cv_settings_t *self, size_t index)
{
    return index < self->positional_count ? self->positional[index] : NULL;
}

const char *
cv_settings_secret (const char *variable)
{
    assert (variable);
    return getenv (variable);
}

void
cv_settings_bind (const cv_settings_t *self, const cv_setting_field_t *fields, size_t count, void *target)
{
    assert (self && (fields || !count) && target);
    for (size_t i = 0; i < count; i++) {
        const cv_setting_t *setting = &fields[i].setting;
        if (fields[i].offset == CV_SETTING_UNBOUND)
            continue;
        char *field = (char *) target + fields[i].offset;
        switch (setting->type) {
        case CV_SETTING_STRING: {
            const char *value = cv_settings_string (self, setting->name);
            memcpy (field, &value, sizeof value);
            break;
        }
        case CV_SETTING_INT: {
            /* The limits keep an INT within int: a table whose limits do not is a bug. */
            assert (setting->min >= INT_MIN && setting->max <= INT_MAX);
            int value = (int) cv_settings_int (self, setting->name);
            memcpy (field, &value, sizeof value);
            break;
        }
        case CV_SETTING_BOOL: {
            bool value = cv_settings_bool (self, setting->name);
            memcpy (field, &value, sizeof value);
            break;
        }
        }
    }
}

/* True when a URL query parameter called name (size bytes) looks like it holds a secret. */
static bool
s_secret_name (const char *name, size_t size)
{
    static const char *const words[] = {"key", "token", "secret", "password", "signature", NULL};
    for (const char *const *word = words; *word; word++) {
        size_t length = strlen (*word);
        for (size_t i = 0; i + length <= size; i++)
            if (strncasecmp (name + i, *word, length) == 0)
                return true;
    }
    return false;
}

void
cv_settings_mask (const char *value, char *out, size_t size)
{
    assert (value && out && size);
    snprintf (out, size, "%s", value);
    char *scheme = strstr (out, "://");
    if (!scheme)
        return;
    /* postgresql://user:secret@host/db -> postgresql://user:***@host/db */
    char *at = strchr (scheme + 3, '@');
    char *slash = strchr (scheme + 3, '/');
    char *colon = strchr (scheme + 3, ':');
    if (at && (!slash || at < slash) && colon && colon < at) {
        char rest[1024];
        snprintf (rest, sizeof rest, "%s", at);
        snprintf (colon, size - (size_t) (colon - out), ":***%s", rest);
    }
    /* ...?api_key=abc&model=x -> ...?api_key=***&model=x */
    char *query = strchr (out, '?');
    if (!query)
        return;
    char masked[1024];
    size_t used = (size_t) (query + 1 - out);
    snprintf (masked, sizeof masked, "%.*s", (int) used, out);
    for (char *pair = query + 1; *pair;) {
        size_t length = strcspn (pair, "&");
        char *equals = memchr (pair, '=', length);
        size_t name_size = equals ? (size_t) (equals - pair) : length;
        size_t filled = strlen (masked);
        if (equals && s_secret_name (pair, name_size))
            snprintf (masked + filled, sizeof masked - filled, "%.*s=***", (int) name_size, pair);
        else
            snprintf (masked + filled, sizeof masked - filled, "%.*s", (int) length, pair);
        pair += length;
        if (*pair == '&') {
            filled = strlen (masked);
            snprintf (masked + filled, sizeof masked - filled, "&");
            pair++;
        }
    }
    snprintf (out, size, "%s", masked);
}

void
cv_settings_log (const cv_settings_t *self, cv_log_t *log)
{
    char line[2048];
    size_t used = 0;
    line[0] = '\0';
    for (size_t i = 0; i < self->count && used < sizeof line; i++) {
        char masked[512];
        cv_settings_mask (self->values[i] ? self->values[i] : "", masked, sizeof masked);
        used +=
            (size_t) snprintf (line + used, sizeof line - used, "%s%s=%s", i ? " " : "", self->table[i].name, masked);
    }
    cv_log_info (log, "settings: %s", line);
}

void
cv_settings_usage (const cv_settings_t *self)
{
    printf ("usage: %s [options]\n%s\n\noptions (each also read from its environment variable):\n", self->program,
            self->summary);
    for (size_t i = 0; i < self->count; i++) {
        const cv_setting_t *setting = &self->table[i];
        char env[128];
        s_env_name (setting->name, env, sizeof env);
        printf ("  --%-22s %s\n  %-24s [%s", setting->name, setting->help, "", env);
        if (setting->fallback)
            printf (", default %s", setting->fallback);
        if (setting->type == CV_SETTING_INT)
            printf (", %ld..%ld", setting->min, setting->max);
        printf ("]\n");
    }
    printf ("  --%-22s %s\n", "help", "show this text");
}

void
cv_settings_test (bool verbose)
{
    static const cv_setting_t table[] = {
        {"broker-endpoint", CV_SETTING_STRING, "tcp://127.0.0.1:5555", 0, 0, "broker to connect to"},
        {"capacity", CV_SETTING_INT, "1", 1, 64, "requests in flight"},
        {"verbose", CV_SETTING_BOOL, "false", 0, 0, "debug logs"},
        {"database-url", CV_SETTING_STRING, NULL, 0, 0, "PostgreSQL"},
    };
    cv_error_t err;
    setenv ("CONVEYOR_CAPACITY", "4", 1);
    cv_settings_t *settings = cv_settings_new ("test", "A test.", table, 4);
    char *argv[] = {"test", "--verbose", "--broker-endpoint=tcp://x:1", "extra", NULL};
    assert (cv_settings_load (settings, 4, argv, &err) == 0);
    assert (strcmp (cv_settings_string (settings, "broker-endpoint"), "tcp://x:1") == 0);
    assert (cv_settings_int (settings, "capacity") == 4);
    assert (cv_settings_bool (settings, "verbose"));
    assert (cv_settings_string (settings, "database-url") == NULL);
    assert (cv_settings_has (settings, "capacity") && !cv_settings_has (settings, "capacityy"));
    assert (cv_settings_positional_count (settings) == 1);
    assert (strcmp (cv_settings_positional (settings, 0), "extra") == 0);
    cv_settings_destroy (&settings);

    /* a boolean takes the word after it when that word is one: --verbose false is false */
    char *spelled[] = {"test", "--verbose", "false", "extra", NULL};
    settings = cv_settings_new ("test", "A test.", table, 4);
    assert (cv_settings_load (settings, 4, spelled, &err) == 0);
    assert (!cv_settings_bool (settings, "verbose"));
    assert (cv_settings_positional_count (settings) == 1
            && strcmp (cv_settings_positional (settings, 0), "extra") == 0);
    cv_settings_destroy (&settings);

    char *flag_wins[] = {"test", "--capacity", "9", NULL};
    settings = cv_settings_new ("test", "A test.", table, 4);
    assert (cv_settings_load (settings, 3, flag_wins, &err) == 0);
    assert (cv_settings_int (settings, "capacity") == 9);
    cv_settings_destroy (&settings);

    char *out_of_range[] = {"test", "--capacity", "65", NULL};
    settings = cv_settings_new ("test", "A test.", table, 4);
    assert (cv_settings_load (settings, 3, out_of_range, &err) == -1);
    assert (strstr (err.message, "outside 1..64"));
    cv_settings_destroy (&settings);

    char *unknown[] = {"test", "--capacty", "2", NULL};
    settings = cv_settings_new ("test", "A test.", table, 4);
    assert (cv_settings_load (settings, 3, unknown, &err) == -1);
    assert (strstr (err.message, "unknown option --capacty"));
    cv_settings_destroy (&settings);

    setenv ("CONVEYOR_CAPACITY", "many", 1);
    settings = cv_settings_new ("test", "A test.", table, 4);
    assert (cv_settings_load (settings, 1, argv, &err) == -1);
    assert (strstr (err.message, "CONVEYOR_CAPACITY"));
    cv_settings_destroy (&settings);
    unsetenv ("CONVEYOR_CAPACITY");

    /* Rows bound to the fields of a struct: the loaded values land there. */
    typedef struct {
        const char *endpoint;
        int capacity;
        bool verbose;
        const char *url;
    } bound_t;
    static const cv_setting_field_t fields[] = {
        {{"broker-endpoint", CV_SETTING_STRING, "tcp://127.0.0.1:5555", 0, 0, "broker to connect to"},
         CV_SETTING_FIELD (bound_t, endpoint, const char *)},
        {{"capacity", CV_SETTING_INT, "1", 1, 64, "requests in flight"}, CV_SETTING_FIELD (bound_t, capacity, int)},
        {{"verbose", CV_SETTING_BOOL, "false", 0, 0, "debug logs"}, CV_SETTING_FIELD (bound_t, verbose, bool)},
        {{"database-url", CV_SETTING_STRING, NULL, 0, 0, "PostgreSQL"}, CV_SETTING_UNBOUND},
    };
    cv_setting_t rows[4];
    for (size_t i = 0; i < 4; i++)
        rows[i] = fields[i].setting;
    char *bound_argv[] = {"test", "--capacity=7", "--verbose", NULL};
    settings = cv_settings_new ("test", "A test.", rows, 4);
    assert (cv_settings_load (settings, 3, bound_argv, &err) == 0);
    bound_t bound = {.url = "untouched"};
    cv_settings_bind (settings, fields, 4, &bound);
    assert (bound.capacity == 7 && bound.verbose);
    assert (strcmp (bound.endpoint, "tcp://127.0.0.1:5555") == 0);
    assert (strcmp (bound.url, "untouched") == 0);
    cv_settings_destroy (&settings);

    char masked[128];
    cv_settings_mask ("postgresql://app:secret@db:5432/conveyor", masked, sizeof masked);
    assert (strcmp (masked, "postgresql://app:***@db:5432/conveyor") == 0);
    cv_settings_mask ("postgresql://conveyor@127.0.0.1/conveyor", masked, sizeof masked);
    assert (strcmp (masked, "postgresql://conveyor@127.0.0.1/conveyor") == 0);
    cv_settings_mask ("https://u:p@llm.example/v1?api_key=abc&model=m&Token=t", masked, sizeof masked);
    assert (strcmp (masked, "https://u:***@llm.example/v1?api_key=***&model=m&Token=***") == 0);
    cv_settings_mask ("postgresql://db/conveyor?sslmode=require", masked, sizeof masked);
    assert (strcmp (masked, "postgresql://db/conveyor?sslmode=require") == 0);
    cv_settings_mask ("tcp://127.0.0.1:5555", masked, sizeof masked);
    assert (strcmp (masked, "tcp://127.0.0.1:5555") == 0);
    assert (!cv_settings_secret ("CV_SETTINGS_TEST_NO_SUCH_VARIABLE"));
    setenv ("CV_SETTINGS_TEST_KEY", "k", 1);
    assert (strcmp (cv_settings_secret ("CV_SETTINGS_TEST_KEY"), "k") == 0);
    unsetenv ("CV_SETTINGS_TEST_KEY");
    if (verbose)
        printf ("cv_settings: ok\n");
}
