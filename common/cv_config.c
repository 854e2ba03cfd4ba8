/* The agent file: a YAML document read with libfyaml, and typed look-ups that name file, line and key. */
#include "cv_config.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfyaml.h>

#include "cv_alloc.h"

struct _cv_config_t {
    char *name;
    struct fy_document *document;
};

static cv_config_t *
s_build (const char *name, const char *path, const char *text, cv_error_t *err)
{
    struct fy_diag_cfg diag_cfg;
    fy_diag_cfg_default (&diag_cfg);
    diag_cfg.fp = NULL;
    struct fy_diag *diag = fy_diag_create (&diag_cfg);
    fy_diag_set_collect_errors (diag, true);
    struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET | FYPCF_DEFAULT_PARSE, .diag = diag};
    struct fy_document *document =
        path ? fy_document_build_from_file (&cfg, path) : fy_document_build_from_string (&cfg, text, strlen (text));
    if (!document || !fy_document_root (document)) {
        void *iterator = NULL;
        struct fy_diag_error *first = fy_diag_errors_iterate (diag, &iterator);
        if (first)
            cv_error_set (err, CV_ERR_INVALID, NULL, "%s:%d: %s", name, first->line + 1, first->msg);
        else if (path && !document)
            cv_error_set (err, CV_ERR_INVALID, NULL, "%s: cannot read: %s", name, strerror (errno));
        else
            cv_error_set (err, CV_ERR_INVALID, NULL, "%s: empty document", name);
        fy_document_destroy (document);
        fy_diag_destroy (diag);
        return NULL;
    }
    fy_diag_destroy (diag);
    cv_config_t *self = cv_calloc (1, sizeof *self);
    self->name = cv_strdup (name);
    self->document = document;
    return self;
}

cv_config_t *
cv_config_load (const char *path, cv_error_t *err)
{
    assert (path);
    return s_build (path, path, NULL, err);
}

cv_config_t *
cv_config_parse (const char *name, const char *text, cv_error_t *err)
{
    assert (name && text);
    return s_build (name, NULL, text, err);
}

void
cv_config_destroy (cv_config_t **self_p)
{
    assert (self_p);
    cv_config_t *self = *self_p;
    if (!self)
        return;
    fy_document_destroy (self->document);
    free (self->name);
    free (self);
    *self_p = NULL;
}

cv_node_t *
cv_config_root (cv_config_t *self)
{
    return fy_document_root (self->document);
}

const char *
cv_config_name (const cv_config_t *self)
{
    return self->name;
}

int
cv_node_line (cv_node_t *node)
{
    if (!node)
        return 0;
    switch (fy_node_get_type (node)) {
    case FYNT_SCALAR: {
        struct fy_token *token = fy_node_get_scalar_token (node);
        const struct fy_mark *mark = token ? fy_token_start_mark (token) : NULL;
        return mark ? mark->line + 1 : 0;
    }
    case FYNT_MAPPING: {
        struct fy_node_pair *pair = fy_node_mapping_get_by_index (node, 0);
        return pair ? cv_node_line (fy_node_pair_key (pair)) : 0;
    }
    case FYNT_SEQUENCE:
        return cv_node_line (fy_node_sequence_get_by_index (node, 0));
    }
    return 0;
}

int
cv_config_fail (const cv_config_t *self, cv_node_t *node, const char *path, cv_error_t *err, const char *format, ...)
{
    char message[400];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    int line = cv_node_line (node);
    if (line)
        return cv_error_set (err, CV_ERR_INVALID, path, "%s:%d: %s: %s", self->name, line, path, message);
    return cv_error_set (err, CV_ERR_INVALID, path, "%s: %s: %s", self->name, path, message);
}

bool
cv_node_is_map (cv_node_t *node)
{
    return node && fy_node_get_type (node) == FYNT_MAPPING;
}

bool
cv_node_is_list (cv_node_t *node)
{
    return node && fy_node_get_type (node) == FYNT_SEQUENCE;
}

bool
cv_node_is_scalar (cv_node_t *node)
{
    return node && fy_node_get_type (node) == FYNT_SCALAR;
}

cv_node_t *
cv_node_get (cv_node_t *map, const char *key)
{
    if (!cv_node_is_map (map))
        return NULL;
    return fy_node_mapping_lookup_value_by_string (map, key, strlen (key));
}

size_t
cv_node_count (cv_node_t *node)
{
    if (cv_node_is_map (node))
        return (size_t) fy_node_mapping_item_count (node);
    if (cv_node_is_list (node))
        return (size_t) fy_node_sequence_item_count (node);
    return 0;
}

cv_node_t *
cv_node_item (cv_node_t *list, size_t index)
{
    return cv_node_is_list (list) ? fy_node_sequence_get_by_index (list, (int) index) : NULL;
}

const char *
cv_node_key (cv_node_t *map, size_t index)
{
    struct fy_node_pair *pair = cv_node_is_map (map) ? fy_node_mapping_get_by_index (map, (int) index) : NULL;
    return pair ? cv_node_text (fy_node_pair_key (pair)) : NULL;
}

cv_node_t *
cv_node_value (cv_node_t *map, size_t index)
{
    struct fy_node_pair *pair = cv_node_is_map (map) ? fy_node_mapping_get_by_index (map, (int) index) : NULL;
    return pair ? fy_node_pair_value (pair) : NULL;
}

const char *
cv_node_text (cv_node_t *node)
{
    return cv_node_is_scalar (node) ? fy_node_get_scalar0 (node) : NULL;
}

static void
s_join (char *out, size_t size, const char *path, const char *key)
{
    snprintf (out, size, "%s%s%s", path && *path ? path : "", path && *path ? "." : "", key);
}

int
cv_config_string (const cv_config_t *self, cv_node_t *map, const char *key, const char *path, bool required,
                  const char **out, cv_error_t *err)
{
    char full[256];
    s_join (full, sizeof full, path, key);
    cv_node_t *node = cv_node_get (map, key);
    if (!node)
        return required ? cv_config_fail (self, map, full, err, "is required") : 0;
    const char *text = cv_node_text (node);
    if (!text)
        return cv_config_fail (self, node, full, err, "must be a string");
    if (required && !*text)
        return cv_config_fail (self, node, full, err, "must not be empty");
    *out = text;
    return 0;
}

int
cv_config_int (const cv_config_t *self, cv_node_t *map, const char *key, const char *path, long min, long max,
               long *out, cv_error_t *err)
{
    char full[256];
    s_join (full, sizeof full, path, key);
    cv_node_t *node = cv_node_get (map, key);
    if (!node)
        return 0;
    const char *text = cv_node_text (node);
    char *end = NULL;
    errno = 0;
    long value = text ? strtol (text, &end, 10) : 0;
    if (!text || errno || end == text || *end)
        return cv_config_fail (self, node, full, err, "must be a whole number");
    if (value < min || value > max)
        return cv_config_fail (self, node, full, err, "must be %ld..%ld, not %ld", min, max, value);
    *out = value;
    return 0;
}

int
cv_config_real (const cv_config_t *self, cv_node_t *map, const char *key, const char *path, double min, double max,
                double *out, cv_error_t *err)
{
    char full[256];
    s_join (full, sizeof full, path, key);
    cv_node_t *node = cv_node_get (map, key);
    if (!node)
        return 0;
    const char *text = cv_node_text (node);
    char *end = NULL;
    errno = 0;
    double value = text ? strtod (text, &end) : 0;
    if (!text || errno || end == text || *end || value != value)
        return cv_config_fail (self, node, full, err, "must be a number");
    if (value < min || value > max)
        return cv_config_fail (self, node, full, err, "must be %g..%g, not %g", min, max, value);
    *out = value;
    return 0;
}

int
cv_config_strings (const cv_config_t *self, cv_node_t *map, const char *key, const char *path, const char ***out,
                   size_t *count, cv_error_t *err)
{
    char full[256];
    s_join (full, sizeof full, path, key);
    *out = NULL;
    *count = 0;
    cv_node_t *node = cv_node_get (map, key);
    if (!node)
        return 0;
    if (cv_node_is_scalar (node)) {
        *out = cv_malloc (sizeof (char *));
        (*out)[0] = cv_node_text (node);
        *count = 1;
        return 0;
    }
    if (!cv_node_is_list (node))
        return cv_config_fail (self, node, full, err, "must be a string or a list of strings");
    size_t items = cv_node_count (node);
    *out = cv_calloc (items ? items : 1, sizeof (char *));
    for (size_t i = 0; i < items; i++) {
        const char *text = cv_node_text (cv_node_item (node, i));
        if (!text) {
            free (*out);
            *out = NULL;
            return cv_config_fail (self, cv_node_item (node, i), full, err, "item %zu must be a string", i + 1);
        }
        (*out)[i] = text;
    }
    *count = items;
    return 0;
}

int
cv_config_known_keys (const cv_config_t *self, cv_node_t *map, const char *path, const char *const *allowed,
                      cv_error_t *err)
{
    if (!cv_node_is_map (map))
        return cv_config_fail (self, map, path, err, "must be a map");
    for (size_t i = 0; i < cv_node_count (map); i++) {
        const char *key = cv_node_key (map, i);
        bool known = false;
        for (const char *const *name = allowed; key && *name && !known; name++)
            known = strcmp (*name, key) == 0;
        if (!known) {
            char full[256];
            s_join (full, sizeof full, path, key ? key : "?");
            struct fy_node_pair *pair = fy_node_mapping_get_by_index (map, (int) i);
            return cv_config_fail (self, fy_node_pair_key (pair), full, err, "unknown key");
        }
    }
    return 0;
}

json_t *
cv_node_to_json (cv_node_t *node)
{
    if (cv_node_is_map (node)) {
        json_t *object = json_object ();
        for (size_t i = 0; i < cv_node_count (node); i++) {
            const char *key = cv_node_key (node, i);
            if (key)
                json_object_set_new (object, key, cv_node_to_json (cv_node_value (node, i)));
        }
        return object;
    }
    if (cv_node_is_list (node)) {
        json_t *array = json_array ();
        for (size_t i = 0; i < cv_node_count (node); i++)
            json_array_append_new (array, cv_node_to_json (cv_node_item (node, i)));
        return array;
    }
    const char *text = cv_node_text (node);
    if (!text)
        return json_null ();
    /* Quoted scalars stay strings; plain ones may be null, numbers or booleans. */
    if (fy_node_get_style (node) == FYNS_PLAIN) {
        if (!*text || strcmp (text, "null") == 0 || strcmp (text, "~") == 0)
            return json_null ();
        if (strcmp (text, "true") == 0)
            return json_true ();
        if (strcmp (text, "false") == 0)
            return json_false ();
        char *end;
        errno = 0;
        long long integer = strtoll (text, &end, 10);
        if (*text && !*end && !errno)
            return json_integer (integer);
        double real = strtod (text, &end);
        if (*text && !*end && !errno)
            return json_real (real);
    }
    return json_string (text);
}

void
cv_config_test (bool verbose)
{
    cv_error_t err;
    const char *text = "agent: demo\n"
                       "tools:\n"
                       "  cards:\n"
                       "    timeout_ms: 900000\n"
                       "    params: [user_id, slots.last4]\n"
                       "    query: SELECT 1\n"
                       "limits: {count: 3, ratio: 0.5, on: true, quoted: '7', none: null, quoted_null: 'null'}\n";
    cv_config_t *config = cv_config_parse ("agent.yaml", text, &err);
    assert (config);
    cv_node_t *root = cv_config_root (config);
    const char *agent = NULL;
    assert (cv_config_string (config, root, "agent", "", true, &agent, &err) == 0);
    assert (strcmp (agent, "demo") == 0);

    cv_node_t *cards = cv_node_get (cv_node_get (root, "tools"), "cards");
    long timeout = 500;
    assert (cv_config_int (config, cards, "timeout_ms", "tools.cards", 1, 60000, &timeout, &err) == -1);
    assert (strcmp (err.message, "agent.yaml:4: tools.cards.timeout_ms: must be 1..60000, not 900000") == 0);
    assert (timeout == 500);

    /* real numbers: whole or not, within limits, and nothing else */
    cv_node_t *limits_map = cv_node_get (root, "limits");
    double real = 7;
    assert (cv_config_real (config, limits_map, "ratio", "limits", 0, 1, &real, &err) == 0 && real == 0.5);
    assert (cv_config_real (config, limits_map, "count", "limits", 0, 10, &real, &err) == 0 && real == 3);
    assert (cv_config_real (config, limits_map, "absent", "limits", 0, 1, &real, &err) == 0 && real == 3);
    assert (cv_config_real (config, limits_map, "count", "limits", 0, 2.5, &real, &err) == -1);
    assert (strcmp (err.message, "agent.yaml:7: limits.count: must be 0..2.5, not 3") == 0);
    assert (cv_config_real (config, limits_map, "on", "limits", 0, 1, &real, &err) == -1);
    assert (strcmp (err.message, "agent.yaml:7: limits.on: must be a number") == 0);
    assert (cv_config_real (config, limits_map, "none", "limits", 0, 1, &real, &err) == -1);
    assert (strstr (err.message, "limits.none: must be a number"));
    assert (cv_config_real (config, root, "limits", "", 0, 1, &real, &err) == -1); /* a map */
    assert (strcmp (err.message, "agent.yaml:7: limits: must be a number") == 0);
    assert (real == 3);
    cv_config_t *odd = cv_config_parse ("odd.yaml", "nan: nan\ninf: inf\ntail: 0.5x\ntiny: 1e-400\n", &err);
    assert (odd);
    cv_node_t *odd_root = cv_config_root (odd);
    assert (cv_config_real (odd, odd_root, "nan", "", 0, 1, &real, &err) == -1);
    assert (strcmp (err.message, "odd.yaml:1: nan: must be a number") == 0);
    assert (cv_config_real (odd, odd_root, "inf", "", 0, 1e6, &real, &err) == -1);
    assert (strcmp (err.message, "odd.yaml:2: inf: must be 0..1e+06, not inf") == 0);
    assert (cv_config_real (odd, odd_root, "tail", "", 0, 1, &real, &err) == -1);
    assert (strcmp (err.message, "odd.yaml:3: tail: must be a number") == 0);
    assert (cv_config_real (odd, odd_root, "tiny", "", 0, 1, &real, &err) == -1);
    assert (strcmp (err.message, "odd.yaml:4: tiny: must be a number") == 0);
    assert (real == 3);
    cv_config_destroy (&odd);

    const char **params;
    size_t count;
    assert (cv_config_strings (config, cards, "params", "tools.cards", &params, &count, &err) == 0);
    assert (count == 2 && strcmp (params[1], "slots.last4") == 0);
    free (params);

    const char *const allowed[] = {"timeout_ms", "params", NULL};
    assert (cv_config_known_keys (config, cards, "tools.cards", allowed, &err) == -1);
    assert (strstr (err.message, "agent.yaml:6: tools.cards.query: unknown key"));

    const char *missing = NULL;
    assert (cv_config_string (config, cards, "url", "tools.cards", true, &missing, &err) == -1);
    assert (strstr (err.message, "tools.cards.url: is required"));

    json_t *limits = cv_node_to_json (cv_node_get (root, "limits"));
    json_t *expected = json_pack ("{s:i, s:f, s:b, s:s, s:n, s:s}", "count", 3, "ratio", 0.5, "on", 1, "quoted", "7",
                                  "none", "quoted_null", "null");
    assert (json_equal (limits, expected));
    json_decref (limits);
    json_decref (expected);
    cv_config_destroy (&config);

    assert (!cv_config_parse ("bad.yaml", "a: [1, 2\nb: c\n", &err));
    assert (strncmp (err.message, "bad.yaml:", 9) == 0);
    assert (!cv_config_load ("/nonexistent/agent.yaml", &err));
    assert (strstr (err.message, "/nonexistent/agent.yaml"));
    if (verbose)
        printf ("cv_config: ok\n");
}
