/* Text templates with {{path}} placeholders filled from a JSON context. */
#include "cv_template.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

#define MAX_PATH 128

json_t *
cv_template_lookup (const json_t *context, const char *path)
{
    json_t *node = (json_t *) context;
    const char *cursor = path;
    while (node && *cursor) {
        const char *dot = strchr (cursor, '.');
        size_t length = dot ? (size_t) (dot - cursor) : strlen (cursor);
        char part[MAX_PATH];
        if (length == 0 || length >= sizeof part)
            return NULL;
        memcpy (part, cursor, length);
        part[length] = '\0';
        if (json_is_object (node))
            node = json_object_get (node, part);
        else if (json_is_array (node)) {
            char *end;
            unsigned long index = strtoul (part, &end, 10);
            node = (*end || !isdigit ((unsigned char) part[0])) ? NULL : json_array_get (node, index);
        } else
            node = NULL;
        cursor = dot ? dot + 1 : cursor + length;
    }
    return node;
}

char *
cv_template_scalar_text (const json_t *value)
{
    char buffer[64];
    if (!value)
        return NULL;
    switch (json_typeof (value)) {
    case JSON_STRING:
        return cv_strdup (json_string_value (value));
    case JSON_INTEGER:
        snprintf (buffer, sizeof buffer, "%lld", (long long) json_integer_value (value));
        break;
    case JSON_REAL:
        snprintf (buffer, sizeof buffer, "%.15g", json_real_value (value));
        break;
    case JSON_TRUE:
        return cv_strdup ("true");
    case JSON_FALSE:
        return cv_strdup ("false");
    default:
        return NULL;
    }
    return cv_strdup (buffer);
}

/* Walks text; for each placeholder calls back with its trimmed path. */
static int
s_walk (const char *text, FILE *out, const json_t *context, cv_error_t *err)
{
    const char *cursor = text;
    while (*cursor) {
        const char *open = strstr (cursor, "{{");
        if (!open) {
            if (out)
                fputs (cursor, out);
            break;
        }
        if (out)
            fwrite (cursor, 1, (size_t) (open - cursor), out);
        const char *close = strstr (open + 2, "}}");
        if (!close)
            return cv_error_set (err, CV_ERR_INVALID, NULL, "placeholder at offset %zu is not closed",
                                 (size_t) (open - text));
        const char *start = open + 2, *end = close;
        while (start < end && isspace ((unsigned char) *start))
            start++;
        while (end > start && isspace ((unsigned char) end[-1]))
            end--;
        char path[MAX_PATH];
        size_t length = (size_t) (end - start);
        if (length == 0 || length >= sizeof path)
            return cv_error_set (err, CV_ERR_INVALID, NULL, "placeholder at offset %zu has no path or too long a path",
                                 (size_t) (open - text));
        memcpy (path, start, length);
        path[length] = '\0';
        for (const char *c = path; *c; c++)
            if (!isalnum ((unsigned char) *c) && *c != '_' && *c != '.')
                return cv_error_set (err, CV_ERR_INVALID, path,
                                     "placeholder {{%s}} has a character outside [A-Za-z0-9_.]", path);
        if (out) {
            char *value = cv_template_scalar_text (cv_template_lookup (context, path));
            if (!value)
                return cv_error_set (err, CV_ERR_INVALID, path, "placeholder {{%s}} has no value", path);
            fputs (value, out);
            free (value);
        }
        cursor = close + 2;
    }
    return 0;
}

char *
cv_template_render (const char *text, const json_t *context, cv_error_t *err)
{
    assert (text && context);
    char *buffer = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&buffer, &size);
    if (!out) {
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    int rc = s_walk (text, out, context, err);
    fclose (out);
    if (rc) {
        free (buffer);
        return NULL;
    }
    return buffer;
}

int
cv_template_check (const char *text, cv_error_t *err)
{
    return s_walk (text, NULL, NULL, err);
}

void
cv_template_test (bool verbose)
{
    cv_error_t err;
    json_t *context =
        json_pack ("{s:{s:s}, s:{s:[{s:s, s:f}, {s:s}]}, s:i, s:b}", "intent", "name", "card_arrival", "evidence",
                   "cards", "last4", "4417", "amount", 12.5, "last4", "0001", "count", 3, "frozen", 0);
    assert (json_is_string (cv_template_lookup (context, "evidence.cards.1.last4")));
    assert (!cv_template_lookup (context, "evidence.cards.2.last4"));
    assert (!cv_template_lookup (context, "evidence.cards.x"));
    assert (!cv_template_lookup (context, "intent..name"));

    char *text = cv_template_render ("Card {{ evidence.cards.0.last4 }}: {{evidence.cards.0.amount}} EUR, "
                                     "{{count}} left, frozen {{frozen}}.",
                                     context, &err);
    assert (text);
    assert (strcmp (text, "Card 4417: 12.5 EUR, 3 left, frozen false.") == 0);
    free (text);

    assert (!cv_template_render ("Hello {{customer.name}}", context, &err));
    assert (strcmp (err.field, "customer.name") == 0);
    assert (!cv_template_render ("Cards: {{evidence.cards}}", context, &err)); /* not a scalar */
    assert (!cv_template_render ("Broken {{intent.name", context, &err));
    assert (cv_template_check ("ok {{a.b}} and {{ c }}", &err) == 0);
    assert (cv_template_check ("bad {{a-b}}", &err) == -1);
    assert (cv_template_check ("bad {{}}", &err) == -1);
    text = cv_template_render ("no placeholders", context, &err);
    assert (text && strcmp (text, "no placeholders") == 0);
    free (text);
    json_decref (context);
    if (verbose)
        printf ("cv_template: ok\n");
}
