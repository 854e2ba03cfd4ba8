/* What an http tool sends and keeps, read from the agent file. */
#include "gatherer_http_spec.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_buffer.h"
#include "cv_envelope.h"
#include "cv_http_url.h"
#include "cv_settings.h"

#define KEY_PATH_BYTES (CV_NAME_MAX_BYTES + 48)
#define ENV_NAME_MAX_BYTES 128
#define RESOLVED_MAX_BYTES 8192 /* a URL or a header, ${...} resolved */

static const char *const s_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};

/* A header name: an HTTP token. */
static bool
s_valid_header_name (const char *name)
{
    size_t size = strlen (name);
    return size > 0 && size < 128
           && strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~") == size;
}

/* Appends a value from the environment; in a URL template, its braces doubled, so that it is
   only ever text, never a placeholder. */
static bool
s_append_value (cv_buffer_t *out, const char *value, size_t size, bool in_url)
{
    bool fits = true;
    for (size_t i = 0; i < size && fits; i++) {
        bool brace = in_url && (value[i] == '{' || value[i] == '}');
        fits = cv_buffer_append (out, value + i, 1, RESOLVED_MAX_BYTES)
               && (!brace || cv_buffer_append (out, value + i, 1, RESOLVED_MAX_BYTES));
    }
    return fits;
}

/* text with each ${NAME} and ${NAME:-default} replaced by the environment's value (a new string),
   or NULL with err, failing at node under key_path. */
static char *
s_resolve_env (const cv_config_t *agent, cv_node_t *node, const char *key_path, const char *text, bool in_url,
               cv_error_t *err)
{
    cv_buffer_t out = {0};
    const char *at = text;
    bool fits = true;
    while (*at && fits) {
        const char *start = strstr (at, "${");
        if (!start) {
            fits = cv_buffer_append (&out, at, strlen (at), RESOLVED_MAX_BYTES);
            break;
        }
        fits = cv_buffer_append (&out, at, (size_t) (start - at), RESOLVED_MAX_BYTES);
        const char *end = strchr (start, '}');
        if (!end) {
            cv_config_fail (agent, node, key_path, err, "'${' without its '}'");
            goto failed;
        }
        const char *name = start + 2;
        const char *fallback = strstr (name, ":-");
        size_t name_size = (size_t) ((fallback && fallback < end ? fallback : end) - name);
        char variable[ENV_NAME_MAX_BYTES];
        if (name_size == 0 || name_size >= sizeof variable || (name[0] >= '0' && name[0] <= '9')
            || strspn (name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") < name_size) {
            cv_config_fail (agent, node, key_path, err, "'%.*s' is not an environment variable's name", (int) name_size,
                            name);
            goto failed;
        }
        memcpy (variable, name, name_size);
        variable[name_size] = '\0';
        const char *value = cv_settings_secret (variable);
        if (!value && fallback && fallback < end)
            fits = fits && s_append_value (&out, fallback + 2, (size_t) (end - fallback - 2), in_url);
        else if (!value) {
            cv_config_fail (agent, node, key_path, err,
                            "the environment variable %s is not set (write ${%s:-default} for a default)", variable,
                            variable);
            goto failed;
        } else
            fits = fits && s_append_value (&out, value, strlen (value), in_url);
        at = end + 1;
    }
    if (!fits) {
        cv_config_fail (agent, node, key_path, err, "over %d bytes once resolved", RESOLVED_MAX_BYTES);
        goto failed;
    }
    return out.data ? out.data : cv_strdup ("");
failed:
    cv_buffer_release (&out);
    return NULL;
}

void
gatherer_http_spec_destroy (gatherer_http_spec_t **self_p)
{
    assert (self_p);
    gatherer_http_spec_t *self = *self_p;
    if (!self)
        return;
    free (self->method);
    free (self->url);
    if (self->names)
        for (size_t i = 0; self->names[i]; i++)
            free (self->names[i]);
    free (self->names);
    for (size_t i = 0; i < self->header_count; i++)
        free (self->headers[i]);
    free (self->headers);
    json_decref (self->body);
    for (size_t i = 0; i < self->keep_count; i++) {
        free (self->keep_names[i]);
        free (self->keep_paths[i]);
    }
    free (self->keep_names);
    free (self->keep_paths);
    free (self->rows);
    free (self);
    *self_p = NULL;
}

/* The URL: resolved, and every placeholder one of the parameters (built once with stand-in values,
   which also checks that it makes an http(s) URL). */
static int
s_parse_url (gatherer_http_spec_t *self, const cv_config_t *agent, cv_node_t *node, const char *path,
             const cv_params_t *params, cv_error_t *err)
{
    const char *url = NULL;
    char key_path[KEY_PATH_BYTES];
    snprintf (key_path, sizeof key_path, "%s.url", path);
    if (cv_config_string (agent, node, "url", path, true, &url, err))
        return -1;
    self->url = s_resolve_env (agent, cv_node_get (node, "url"), key_path, url, true, err);
    if (!self->url)
        return -1;
    const char *values[CV_PARAMS_MAX];
    for (size_t i = 0; i < params->count; i++)
        values[i] = "x";
    cv_error_t why;
    char *built = cv_http_url_build (self->url, params->count, (const char *const *) params->names, values, &why);
    if (built) {
        free (built);
        return 0;
    }
    /* the resolved URL may hold a secret: only a template with nothing resolved is quoted */
    if (strstr (url, "${"))
        return cv_config_fail (agent, cv_node_get (node, "url"), key_path, err,
                               "'%s' does not make an http(s) URL once its ${...} are resolved, or names a "
                               "placeholder that is not one of the tool's params",
                               url);
    return cv_config_fail (agent, cv_node_get (node, "url"), key_path, err, "%s", why.message);
}

static int
s_parse_headers (gatherer_http_spec_t *self, const cv_config_t *agent, cv_node_t *node, const char *path,
                 cv_error_t *err)
{
    char key_path[KEY_PATH_BYTES];
    snprintf (key_path, sizeof key_path, "%s.headers", path);
    cv_node_t *headers = cv_node_get (node, "headers");
    if (!headers)
        return 0;
    if (!cv_node_is_map (headers))
        return cv_config_fail (agent, headers, key_path, err, "must be a map of header name to value");
    size_t count = cv_node_count (headers);
    if (count > GATHERER_HTTP_MAX_HEADERS)
        return cv_config_fail (agent, headers, key_path, err, "%zu headers, over the limit of %d", count,
                               GATHERER_HTTP_MAX_HEADERS);
    self->headers = cv_calloc (count ? count : 1, sizeof (char *));
    for (size_t i = 0; i < count; i++) {
        const char *name = cv_node_key (headers, i);
        cv_node_t *value_node = cv_node_value (headers, i);
        const char *value = cv_node_text (value_node);
        if (!name || !s_valid_header_name (name))
            return cv_config_fail (agent, value_node, key_path, err, "'%s' is not a header name", name ? name : "");
        if (!value || strpbrk (value, "\r\n"))
            return cv_config_fail (agent, value_node, key_path, err, "%s: the value must be one line of text", name);
        char *resolved = s_resolve_env (agent, value_node, key_path, value, false, err);
        if (!resolved)
            return -1;
        if (strpbrk (resolved, "\r\n")) {
            free (resolved);
            return cv_config_fail (agent, value_node, key_path, err, "%s: its environment value is not one line", name);
        }
        self->headers[self->header_count++] = cv_asprintf ("%s: %s", name, resolved);
        free (resolved);
    }
    return 0;
}

const char *
gatherer_http_spec_placeholder (const char *text, size_t *size)
{
    assert (text && size);
    size_t length = strlen (text);
    if (length < 3 || text[0] != '{' || text[length - 1] != '}' || strpbrk (text + 1, "{}") != text + length - 1)
        return NULL;
    *size = length - 2;
    return text + 1;
}

/* Every "{name}" string of the body template is a parameter's. */
static int
s_check_body (const json_t *value, const cv_params_t *params, const cv_config_t *agent, cv_node_t *node,
              const char *key_path, cv_error_t *err)
{
    if (json_is_string (value)) {
        size_t size;
        const char *name = gatherer_http_spec_placeholder (json_string_value (value), &size);
        if (!name)
            return 0;
        for (size_t i = 0; i < params->count; i++)
            if (strlen (params->names[i]) == size && memcmp (params->names[i], name, size) == 0)
                return 0;
        return cv_config_fail (agent, node, key_path, err, "'{%.*s}' is not one of the tool's params", (int) size,
                               name);
    }
    const char *key;
    json_t *item;
    size_t index;
    if (json_is_object (value))
        json_object_foreach ((json_t *) value, key, item) {
            if (s_check_body (item, params, agent, node, key_path, err))
                return -1;
        }
    else if (json_is_array (value))
        json_array_foreach (value, index, item) {
            if (s_check_body (item, params, agent, node, key_path, err))
                return -1;
        }
    return 0;
}

static int
s_parse_body (gatherer_http_spec_t *self, const cv_config_t *agent, cv_node_t *node, const char *path,
              const cv_params_t *params, cv_error_t *err)
{
    char key_path[KEY_PATH_BYTES];
    snprintf (key_path, sizeof key_path, "%s.body", path);
    cv_node_t *body = cv_node_get (node, "body");
    if (!body)
        return 0;
    if (!cv_node_is_map (body) && !cv_node_is_list (body))
        return cv_config_fail (agent, body, key_path, err, "must be a map or a list (the JSON body's template)");
    if (strcmp (self->method, "GET") == 0)
        return cv_config_fail (agent, body, key_path, err, "a GET sends no body");
    self->body = cv_node_to_json (body);
    return s_check_body (self->body, params, agent, body, key_path, err);
}

static int
s_parse_keep (gatherer_http_spec_t *self, const cv_config_t *agent, cv_node_t *node, const char *path, cv_error_t *err)
{
    char key_path[KEY_PATH_BYTES];
    snprintf (key_path, sizeof key_path, "%s.keep", path);
    cv_node_t *keep = cv_node_get (node, "keep");
    if (!keep || !cv_node_is_map (keep) || cv_node_count (keep) == 0)
        return cv_config_fail (agent, keep ? keep : node, key_path, err,
                               "required: a map of field name to the answer's path (rate: data.rate)");
    size_t count = cv_node_count (keep);
    if (count > GATHERER_HTTP_MAX_KEEP)
        return cv_config_fail (agent, keep, key_path, err, "%zu fields, over the limit of %d", count,
                               GATHERER_HTTP_MAX_KEEP);
    self->keep_names = cv_calloc (count, sizeof (char *));
    self->keep_paths = cv_calloc (count, sizeof (char *));
    for (size_t i = 0; i < count; i++) {
        const char *name = cv_node_key (keep, i);
        cv_node_t *value = cv_node_value (keep, i);
        const char *answer_path = cv_node_text (value);
        if (!name || !cv_params_valid_name (name))
            return cv_config_fail (agent, value, key_path, err, "'%s' is not a field name (1..%d of [A-Za-z0-9_])",
                                   name ? name : "", CV_PARAM_NAME_MAX_BYTES - 1);
        if (!answer_path || !cv_params_valid_path (answer_path))
            return cv_config_fail (agent, value, key_path, err,
                                   "%s: '%s' is not a path into the answer (keys and indices joined by dots)", name,
                                   answer_path ? answer_path : "");
        self->keep_names[i] = cv_strdup (name);
        self->keep_paths[i] = cv_strdup (answer_path);
        self->keep_count++;
    }
    return 0;
}

gatherer_http_spec_t *
gatherer_http_spec_parse (const cv_config_t *agent, cv_node_t *node, const char *path, const cv_params_t *params,
                          cv_error_t *err)
{
    assert (agent && node && path && params && params->names);
    gatherer_http_spec_t *self = cv_calloc (1, sizeof *self);
    self->names = cv_calloc (params->count + 1, sizeof (char *));
    for (size_t i = 0; i < params->count; i++)
        self->names[i] = cv_strdup (params->names[i]);

    const char *method = "GET", *rows = NULL;
    long max_response = GATHERER_HTTP_MAX_RESPONSE_DEFAULT;
    char key_path[KEY_PATH_BYTES];
    if (cv_config_string (agent, node, "method", path, false, &method, err)
        || cv_config_string (agent, node, "rows", path, false, &rows, err)
        || cv_config_int (agent, node, "max_response_bytes", path, 1, GATHERER_HTTP_MAX_RESPONSE_MAX, &max_response,
                          err))
        goto failed;
    size_t m = 0;
    while (s_methods[m] && strcmp (s_methods[m], method) != 0)
        m++;
    if (!s_methods[m]) {
        snprintf (key_path, sizeof key_path, "%s.method", path);
        cv_config_fail (agent, cv_node_get (node, "method"), key_path, err,
                        "'%s' is not a method (GET, POST, PUT, PATCH or DELETE)", method);
        goto failed;
    }
    self->method = cv_strdup (method);
    if (rows && !cv_params_valid_path (rows)) {
        snprintf (key_path, sizeof key_path, "%s.rows", path);
        cv_config_fail (agent, cv_node_get (node, "rows"), key_path, err,
                        "'%s' is not a path into the answer (keys and indices joined by dots)", rows);
        goto failed;
    }
    self->rows = rows ? cv_strdup (rows) : NULL;
    self->max_response_bytes = (size_t) max_response;
    if (s_parse_url (self, agent, node, path, params, err) || s_parse_headers (self, agent, node, path, err)
        || s_parse_body (self, agent, node, path, params, err) || s_parse_keep (self, agent, node, path, err))
        goto failed;
    return self;
failed:
    gatherer_http_spec_destroy (&self);
    return NULL;
}

/*  --------------------------------------------------------------------------
    Self-test */

/* Parses tool t of text; NULL with err. */
static gatherer_http_spec_t *
s_parse (const char *text, cv_error_t *err)
{
    cv_config_t *agent = cv_config_parse ("agent.yaml", text, err);
    assert (agent);
    cv_node_t *tool = cv_node_get (cv_node_get (cv_config_root (agent), "tools"), "t");
    cv_params_t params;
    gatherer_http_spec_t *spec = NULL;
    if (cv_params_parse (agent, tool, "tools.t", true, &params, err) == 0) {
        spec = gatherer_http_spec_parse (agent, tool, "tools.t", &params, err);
        cv_params_free (&params);
    }
    cv_config_destroy (&agent);
    return spec;
}

static void
s_expect_failure (const char *text, const char *expected)
{
    cv_error_t err;
    gatherer_http_spec_t *spec = s_parse (text, &err);
    cv_assert_that (!spec && strstr (err.message, expected), "expected '%s', got %s", expected,
                    spec ? "success" : err.message);
}

void
gatherer_http_spec_test (bool verbose)
{
    setenv ("GATHERER_HTTP_SPEC_TEST_TOKEN", "s3cret", 1);
    unsetenv ("GATHERER_HTTP_SPEC_TEST_UNSET");
    cv_error_t err;
    gatherer_http_spec_t *spec =
        s_parse ("tools:\n"
                 "  t:\n"
                 "    method: POST\n"
                 "    url: '${GATHERER_HTTP_SPEC_TEST_UNSET:-http://127.0.0.1:8090}/v1/parcels/{tracking}?q={q}'\n"
                 "    params: {tracking: evidence.cards.0.tracking, q: intent.slots.currency}\n"
                 "    headers: {Authorization: 'Bearer ${GATHERER_HTTP_SPEC_TEST_TOKEN}', X-Source: support}\n"
                 "    body: {tracking: '{tracking}', note: 'not {q} but text', list: ['{q}', 2]}\n"
                 "    keep: {status: status, carrier: carrier.name, first: events.0.at}\n"
                 "    rows: parcels\n"
                 "    max_response_bytes: 1024\n",
                 &err);
    cv_assert_that (spec, "%s", err.message);
    assert (streq (spec->method, "POST"));
    assert (streq (spec->url, "http://127.0.0.1:8090/v1/parcels/{tracking}?q={q}"));
    assert (streq (spec->names[0], "tracking") && streq (spec->names[1], "q") && !spec->names[2]);
    assert (spec->header_count == 2 && streq (spec->headers[0], "Authorization: Bearer s3cret"));
    assert (streq (spec->headers[1], "X-Source: support"));
    assert (json_is_object (spec->body) && json_array_size (json_object_get (spec->body, "list")) == 2);
    assert (spec->keep_count == 3 && streq (spec->keep_names[1], "carrier")
            && streq (spec->keep_paths[1], "carrier.name"));
    assert (streq (spec->rows, "parcels") && spec->max_response_bytes == 1024);
    gatherer_http_spec_destroy (&spec);
    assert (!spec);
    gatherer_http_spec_destroy (&spec);

    /* the defaults */
    spec = s_parse ("tools:\n  t: {url: 'http://h/x', keep: {a: a}}\n", &err);
    assert (spec && streq (spec->method, "GET") && !spec->body && !spec->rows && spec->header_count == 0);
    assert (spec->max_response_bytes == GATHERER_HTTP_MAX_RESPONSE_DEFAULT && !spec->names[0]);
    gatherer_http_spec_destroy (&spec);

    s_expect_failure ("tools:\n  t: {keep: {a: a}}\n", "agent.yaml:2: tools.t.url: is required");
    s_expect_failure ("tools:\n  t:\n    url: '${GATHERER_HTTP_SPEC_TEST_UNSET}/x'\n    keep: {a: a}\n",
                      "agent.yaml:3: tools.t.url: the environment variable GATHERER_HTTP_SPEC_TEST_UNSET is not set");
    s_expect_failure ("tools:\n  t: {url: '${1X}/x', keep: {a: a}}\n", "'1X' is not an environment variable");
    s_expect_failure ("tools:\n  t: {url: '${X/x', keep: {a: a}}\n", "'${' without its '}'");
    s_expect_failure ("tools:\n  t: {url: 'http://h/{nope}', keep: {a: a}}\n", "tools.t.url:");
    s_expect_failure ("tools:\n  t: {url: 'ftp://h/x', keep: {a: a}}\n", "tools.t.url:");
    s_expect_failure ("tools:\n  t: {method: TRACE, url: 'http://h/x', keep: {a: a}}\n", "'TRACE' is not a method");
    s_expect_failure ("tools:\n  t: {url: 'http://h/x', body: {a: 1}, keep: {a: a}}\n", "a GET sends no body");
    s_expect_failure ("tools:\n  t: {method: POST, url: 'http://h/x', body: {a: '{who}'}, keep: {a: a}}\n",
                      "tools.t.body: '{who}' is not one of the tool's params");
    s_expect_failure ("tools:\n  t: {method: POST, url: 'http://h/x', body: text, keep: {a: a}}\n",
                      "must be a map or a list");
    s_expect_failure ("tools:\n  t: {url: 'http://h/x'}\n", "tools.t.keep: required");
    s_expect_failure ("tools:\n  t: {url: 'http://h/x', keep: {a: 'b c'}}\n", "a: 'b c' is not a path into the answer");
    s_expect_failure ("tools:\n  t: {url: 'http://h/x', keep: {'a-b': a}}\n", "'a-b' is not a field name");
    s_expect_failure ("tools:\n  t: {url: 'http://h/x', keep: {a: a}, rows: 'x y'}\n", "tools.t.rows:");
    s_expect_failure ("tools:\n  t: {url: 'http://h/x', keep: {a: a}, headers: [a]}\n", "must be a map of header name");
    s_expect_failure ("tools:\n  t: {url: 'http://h/x', keep: {a: a}, headers: {'a b': c}}\n",
                      "'a b' is not a header name");
    s_expect_failure ("tools:\n  t: {url: 'http://h/x', keep: {a: a}, headers: {A: \"x\\ny\"}}\n",
                      "A: the value must be one line");
    s_expect_failure ("tools:\n  t: {url: 'http://h/x', keep: {a: a}, max_response_bytes: 0}\n",
                      "tools.t.max_response_bytes");
    /* an environment value is text in the URL, never a placeholder; an unresolved URL that fails
       is quoted as written, never resolved (it may hold a secret) */
    setenv ("GATHERER_HTTP_SPEC_TEST_TOKEN", "http://h/{x}", 1);
    spec = s_parse ("tools:\n  t: {url: '${GATHERER_HTTP_SPEC_TEST_TOKEN}/y', keep: {a: a}}\n", &err);
    cv_assert_that (spec, "%s", err.message);
    assert (streq (spec->url, "http://h/{{x}}/y"));
    gatherer_http_spec_destroy (&spec);
    setenv ("GATHERER_HTTP_SPEC_TEST_TOKEN", "ftp://s3cret@h", 1);
    spec = s_parse ("tools:\n  t: {url: '${GATHERER_HTTP_SPEC_TEST_TOKEN}/y', keep: {a: a}}\n", &err);
    assert (!spec && strstr (err.message, "'${GATHERER_HTTP_SPEC_TEST_TOKEN}/y' does not make an http(s) URL once"));
    assert (!strstr (err.message, "s3cret"));
    size_t size;
    const char *name = gatherer_http_spec_placeholder ("{tracking}", &size);
    assert (name && size == 8 && strncmp (name, "tracking", size) == 0);
    assert (!gatherer_http_spec_placeholder ("{qX", &size) && !gatherer_http_spec_placeholder ("{a}{b}", &size));
    assert (!gatherer_http_spec_placeholder ("{}", &size) && !gatherer_http_spec_placeholder ("x{a}", &size));
    unsetenv ("GATHERER_HTTP_SPEC_TEST_TOKEN");
    if (verbose)
        printf ("gatherer_http_spec: ok\n");
}
