/* JSON Schema's structured-output subset: checked once, then enforced. */
#include "cv_json_schema.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cv_assert.h"

/* How deep a schema or a value may nest before it is refused: far beyond any answer's shape,
   short of a stack the recursion could exhaust. */
#define SCHEMA_MAX_DEPTH 32

/* Where in the schema or the value a check is: "$.items[2].name", cut short (with "...") when
   it would not fit. */
typedef struct {
    char text[192];
    size_t length;
    int depth;
} s_path_t;

static size_t
s_push (s_path_t *path, const char *format, const char *key, size_t index)
{
    size_t was = path->length;
    int added = key ? snprintf (path->text + was, sizeof path->text - was, format, key)
                    : snprintf (path->text + was, sizeof path->text - was, format, index);
    if (added < 0 || (size_t) added >= sizeof path->text - was) {
        path->length = sizeof path->text - 4;
        memcpy (path->text + path->length, "...", 4);
    } else
        path->length += (size_t) added;
    path->depth++;
    return was;
}

static void
s_pop (s_path_t *path, size_t was)
{
    path->length = was;
    path->text[was] = '\0';
    path->depth--;
}

static const char *const s_types[] = {"object", "array", "string", "number", "integer", "boolean", "null", NULL};
static const char *const s_keywords[] = {"type",
                                         "enum",
                                         "const",
                                         "properties",
                                         "required",
                                         "additionalProperties",
                                         "items",
                                         "minItems",
                                         "maxItems",
                                         "minLength",
                                         "maxLength",
                                         "minimum",
                                         "maximum",
                                         "exclusiveMinimum",
                                         "exclusiveMaximum",
                                         "anyOf",
                                         "title",
                                         "description",
                                         "default",
                                         NULL};

static const char *const s_counts[] = {"minItems", "maxItems", "minLength", "maxLength", NULL};
static const char *const s_bounds[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", NULL};

static bool
s_listed (const char *const *list, const char *name)
{
    for (; *list; list++)
        if (strcmp (*list, name) == 0)
            return true;
    return false;
}

static int
s_bad (const s_path_t *path, cv_error_t *err, const char *what)
{
    return cv_error_set (err, CV_ERR_INVALID, "schema", "%s: %s", path->text, what);
}

static int s_check (const json_t *schema, s_path_t *path, cv_error_t *err);

/* A keyword whose value is a schema. */
static int
s_check_sub (const json_t *schema, const char *keyword, s_path_t *path, cv_error_t *err)
{
    size_t was = s_push (path, ".%s", keyword, 0);
    int rc = s_check (schema, path, err);
    s_pop (path, was);
    return rc;
}

static int
s_check_type (const json_t *type, const s_path_t *path, cv_error_t *err)
{
    if (json_is_string (type))
        return s_listed (s_types, json_string_value (type)) ? 0 : s_bad (path, err, "type names no JSON type");
    if (!json_is_array (type) || json_array_size (type) == 0)
        return s_bad (path, err, "type must be a type's name or a non-empty list of them");
    size_t i;
    json_t *name;
    json_array_foreach (type, i, name)
        if (!json_is_string (name) || !s_listed (s_types, json_string_value (name)))
            return s_bad (path, err, "type lists something that is no JSON type");
    return 0;
}

static bool
s_count (const json_t *value)
{
    return json_is_integer (value) && json_integer_value (value) >= 0;
}

static int
s_check (const json_t *schema, s_path_t *path, cv_error_t *err)
{
    if (json_is_boolean (schema))
        return 0;
    if (!json_is_object (schema))
        return s_bad (path, err, "a schema must be an object or a boolean");
    if (path->depth > SCHEMA_MAX_DEPTH)
        return s_bad (path, err, "the schema nests too deep");
    const char *keyword;
    json_t *value;
    json_object_foreach ((json_t *) schema, keyword, value) {
        char what[96];
        if (!s_listed (s_keywords, keyword)) {
            snprintf (what, sizeof what, "the keyword %.40s is not supported", keyword);
            return s_bad (path, err, what);
        }
        int rc = 0;
        if (strcmp (keyword, "type") == 0)
            rc = s_check_type (value, path, err);
        else if (strcmp (keyword, "enum") == 0 && (!json_is_array (value) || json_array_size (value) == 0))
            rc = s_bad (path, err, "enum must be a non-empty list");
        else if (strcmp (keyword, "required") == 0) {
            size_t i;
            json_t *name;
            if (!json_is_array (value))
                rc = s_bad (path, err, "required must be a list of names");
            json_array_foreach (value, i, name)
                if (!rc && !json_is_string (name))
                    rc = s_bad (path, err, "required must be a list of names");
        } else if (strcmp (keyword, "properties") == 0) {
            if (!json_is_object (value))
                rc = s_bad (path, err, "properties must be an object of schemas");
            const char *name;
            json_t *property;
            json_object_foreach (value, name, property) {
                if (rc)
                    break;
                size_t was = s_push (path, ".properties.%s", name, 0);
                rc = s_check (property, path, err);
                s_pop (path, was);
            }
        } else if (strcmp (keyword, "additionalProperties") == 0 || strcmp (keyword, "items") == 0)
            rc = s_check_sub (value, keyword, path, err);
        else if (strcmp (keyword, "anyOf") == 0) {
            if (!json_is_array (value) || json_array_size (value) == 0)
                rc = s_bad (path, err, "anyOf must be a non-empty list of schemas");
            size_t i;
            json_t *branch;
            json_array_foreach (value, i, branch) {
                if (rc)
                    break;
                size_t was = s_push (path, ".anyOf[%zu]", NULL, i);
                rc = s_check (branch, path, err);
                s_pop (path, was);
            }
        } else if (s_listed (s_counts, keyword)) {
            if (!s_count (value)) {
                snprintf (what, sizeof what, "%s must be a whole number, 0 or more", keyword);
                rc = s_bad (path, err, what);
            }
        } else if (s_listed (s_bounds, keyword) && !json_is_number (value)) {
            snprintf (what, sizeof what, "%s must be a number", keyword);
            rc = s_bad (path, err, what);
        }
        if (rc)
            return -1;
    }
    return 0;
}

int
cv_json_schema_check (const json_t *schema, cv_error_t *err)
{
    s_path_t path = {.text = "schema", .length = 6};
    return s_check (schema, &path, err);
}

/*  --------------------------------------------------------------------------
    Validation */

static bool
s_is_type (const json_t *value, const char *type)
{
    if (strcmp (type, "object") == 0)
        return json_is_object (value);
    if (strcmp (type, "array") == 0)
        return json_is_array (value);
    if (strcmp (type, "string") == 0)
        return json_is_string (value);
    if (strcmp (type, "number") == 0)
        return json_is_number (value);
    if (strcmp (type, "integer") == 0)
        return json_is_integer (value)
               || (json_is_real (value) && isfinite (json_real_value (value))
                   && floor (json_real_value (value)) == json_real_value (value));
    if (strcmp (type, "boolean") == 0)
        return json_is_boolean (value);
    return json_is_null (value);
}

static bool
s_has_type (const json_t *value, const json_t *type)
{
    if (json_is_string (type))
        return s_is_type (value, json_string_value (type));
    size_t i;
    json_t *name;
    json_array_foreach (type, i, name)
        if (s_is_type (value, json_string_value (name)))
            return true;
    return false;
}

static const char *
s_type_of (const json_t *value)
{
    switch (json_typeof (value)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        break;
    }
    return "null";
}

static int s_mismatch (const s_path_t *path, cv_error_t *err, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_mismatch (const s_path_t *path, cv_error_t *err, const char *format, ...)
{
    char what[160];
    va_list args;
    va_start (args, format);
    vsnprintf (what, sizeof what, format, args);
    va_end (args);
    return cv_error_set (err, CV_ERR_MALFORMED, path->text, "%s: %s", path->text, what);
}

/* A string's length in characters (code points): its bytes less UTF-8's continuation bytes. */
static size_t
s_characters (const json_t *value)
{
    const char *text = json_string_value (value);
    size_t size = json_string_length (value), count = 0;
    for (size_t i = 0; i < size; i++)
        count += ((unsigned char) text[i] & 0xC0) != 0x80;
    return count;
}

static int s_validate (const json_t *schema, const json_t *value, s_path_t *path, cv_error_t *err);

static int
s_validate_object (const json_t *schema, const json_t *value, s_path_t *path, cv_error_t *err)
{
    const json_t *properties = json_object_get (schema, "properties");
    const json_t *additional = json_object_get (schema, "additionalProperties");
    size_t i;
    json_t *name;
    json_array_foreach (json_object_get (schema, "required"), i, name)
        if (!json_object_get (value, json_string_value (name)))
            return s_mismatch (path, err, "the required %.64s is missing", json_string_value (name));
    const char *key;
    json_t *member;
    json_object_foreach ((json_t *) value, key, member) {
        const json_t *property = json_object_get (properties, key);
        if (!property && json_is_false (additional))
            return s_mismatch (path, err, "%.64s is not one of its properties", key);
        const json_t *sub = property ? property : additional;
        if (!sub)
            continue;
        size_t was = s_push (path, ".%s", key, 0);
        int rc = s_validate (sub, member, path, err);
        s_pop (path, was);
        if (rc)
            return -1;
    }
    return 0;
}

static int
s_validate_array (const json_t *schema, const json_t *value, s_path_t *path, cv_error_t *err)
{
    size_t size = json_array_size (value);
    const json_t *min = json_object_get (schema, "minItems"), *max = json_object_get (schema, "maxItems");
    if (min && size < (size_t) json_integer_value (min))
        return s_mismatch (path, err, "%zu items, fewer than %lld", size, (long long) json_integer_value (min));
    if (max && size > (size_t) json_integer_value (max))
        return s_mismatch (path, err, "%zu items, more than %lld", size, (long long) json_integer_value (max));
    const json_t *items = json_object_get (schema, "items");
    if (!items)
        return 0;
    size_t i;
    json_t *item;
    json_array_foreach (value, i, item) {
        size_t was = s_push (path, "[%zu]", NULL, i);
        int rc = s_validate (items, item, path, err);
        s_pop (path, was);
        if (rc)
            return -1;
    }
    return 0;
}

static int
s_validate_number (const json_t *schema, const json_t *value, const s_path_t *path, cv_error_t *err)
{
    double number = json_number_value (value);
    const json_t *bound;
    if ((bound = json_object_get (schema, "minimum")) && number < json_number_value (bound))
        return s_mismatch (path, err, "%g is below the minimum %g", number, json_number_value (bound));
    if ((bound = json_object_get (schema, "maximum")) && number > json_number_value (bound))
        return s_mismatch (path, err, "%g is above the maximum %g", number, json_number_value (bound));
    if ((bound = json_object_get (schema, "exclusiveMinimum")) && number <= json_number_value (bound))
        return s_mismatch (path, err, "%g is not above %g", number, json_number_value (bound));
    if ((bound = json_object_get (schema, "exclusiveMaximum")) && number >= json_number_value (bound))
        return s_mismatch (path, err, "%g is not below %g", number, json_number_value (bound));
    return 0;
}

static int
s_validate (const json_t *schema, const json_t *value, s_path_t *path, cv_error_t *err)
{
    if (json_is_true (schema))
        return 0;
    if (json_is_false (schema))
        return s_mismatch (path, err, "nothing is allowed here");
    if (path->depth > SCHEMA_MAX_DEPTH)
        return s_mismatch (path, err, "the value nests too deep");
    const json_t *type = json_object_get (schema, "type");
    if (type && !s_has_type (value, type))
        return s_mismatch (path, err, "%s, not of the type the schema gives", s_type_of (value));
    const json_t *allowed = json_object_get (schema, "enum");
    if (allowed) {
        bool found = false;
        size_t i;
        json_t *option;
        json_array_foreach (allowed, i, option)
            found = found || json_equal ((json_t *) value, option);
        if (!found) {
            char shown[48] = "";
            if (json_is_string (value))
                snprintf (shown, sizeof shown, "\"%.32s\" ", json_string_value (value));
            return s_mismatch (path, err, "%sis not one of the %zu allowed values", shown, json_array_size (allowed));
        }
    }
    const json_t *constant = json_object_get (schema, "const");
    if (constant && !json_equal ((json_t *) value, (json_t *) constant))
        return s_mismatch (path, err, "not the one value allowed");
    if (json_is_string (value)) {
        const json_t *min = json_object_get (schema, "minLength"), *max = json_object_get (schema, "maxLength");
        size_t length = (min || max) ? s_characters (value) : 0;
        if (min && length < (size_t) json_integer_value (min))
            return s_mismatch (path, err, "%zu characters, fewer than %lld", length,
                               (long long) json_integer_value (min));
        if (max && length > (size_t) json_integer_value (max))
            return s_mismatch (path, err, "%zu characters, more than %lld", length,
                               (long long) json_integer_value (max));
    } else if (json_is_number (value) && s_validate_number (schema, value, path, err))
        return -1;
    else if (json_is_object (value) && s_validate_object (schema, value, path, err))
        return -1;
    else if (json_is_array (value) && s_validate_array (schema, value, path, err))
        return -1;
    const json_t *any = json_object_get (schema, "anyOf");
    if (any) {
        size_t i;
        json_t *branch;
        cv_error_t first;
        cv_error_clear (&first);
        json_array_foreach (any, i, branch) {
            cv_error_t attempt;
            if (s_validate (branch, value, path, &attempt) == 0)
                return 0;
            if (i == 0)
                first = attempt;
        }
        return s_mismatch (path, err, "matches none of anyOf's %zu schemas (the first: %s)", json_array_size (any),
                           first.message);
    }
    return 0;
}

int
cv_json_schema_validate (const json_t *schema, const json_t *value, cv_error_t *err)
{
    assert (schema && value);
    s_path_t path = {.text = "$", .length = 1};
    return s_validate (schema, value, &path, err);
}

/*  --------------------------------------------------------------------------
    Self-test */

static json_t *
s_json (const char *text)
{
    json_error_t error;
    json_t *value = json_loads (text, JSON_DECODE_ANY, &error);
    cv_assert_that (value, "bad test JSON %s: %s", text, error.text);
    return value;
}

static void
s_expect (const json_t *schema, const char *value_text, const char *path)
{
    json_t *value = s_json (value_text);
    cv_error_t err;
    int rc = cv_json_schema_validate (schema, value, &err);
    if (path)
        cv_assert_that (rc == -1 && err.code == CV_ERR_MALFORMED && strcmp (err.field, path) == 0,
                        "%s: expected a mismatch at %s, got %s", value_text, path, rc ? err.message : "a match");
    else
        cv_assert_that (rc == 0, "%s: %s", value_text, err.message);
    json_decref (value);
}

void
cv_json_schema_test (bool verbose)
{
    cv_error_t err;
    /* the shape the intent worker asks for */
    json_t *schema = s_json ("{\"type\": \"object\", \"additionalProperties\": false, \"required\": [\"intent\"],"
                             " \"properties\": {\"intent\": {\"type\": \"string\", \"enum\": [\"card_arrival\","
                             " \"lost_or_stolen_card\"], \"description\": \"one of the agent's intents\"}}}");
    assert (cv_json_schema_check (schema, &err) == 0);
    s_expect (schema, "{\"intent\": \"card_arrival\"}", NULL);
    s_expect (schema, "{\"intent\": \"pizza\"}", "$.intent");
    s_expect (schema, "{}", "$");
    s_expect (schema, "{\"intent\": \"card_arrival\", \"why\": \"...\"}", "$");
    s_expect (schema, "{\"intent\": 7}", "$.intent");
    s_expect (schema, "[\"card_arrival\"]", "$");
    json_t *value = s_json ("{\"intent\": \"pizza\"}");
    assert (cv_json_schema_validate (schema, value, &err) == -1);
    cv_assert_that (strcmp (err.message, "$.intent: \"pizza\" is not one of the 2 allowed values") == 0, "%s",
                    err.message);
    json_decref (value);
    json_decref (schema);

    /* lists, numbers, strings' lengths in characters, nullable types, anyOf, const */
    schema = s_json ("{\"type\": \"object\", \"properties\": {"
                     " \"items\": {\"type\": \"array\", \"minItems\": 1, \"maxItems\": 2,"
                     "  \"items\": {\"type\": \"object\", \"required\": [\"n\"],"
                     "   \"properties\": {\"n\": {\"type\": \"integer\", \"minimum\": 0, \"exclusiveMaximum\": 10}}}},"
                     " \"name\": {\"type\": [\"string\", \"null\"], \"minLength\": 2, \"maxLength\": 3},"
                     " \"amount\": {\"anyOf\": [{\"type\": \"number\", \"maximum\": 100}, {\"const\": \"all\"}]},"
                     " \"extra\": true},"
                     " \"additionalProperties\": {\"type\": \"boolean\"}}");
    assert (cv_json_schema_check (schema, &err) == 0);
    s_expect (schema, "{\"items\": [{\"n\": 0}, {\"n\": 9.0}], \"name\": \"\u00e9t\u00e9\", \"amount\": \"all\"}",
              NULL);
    s_expect (schema, "{\"name\": null, \"amount\": 99.5, \"flag\": true}", NULL);
    s_expect (schema, "{\"items\": []}", "$.items");
    s_expect (schema, "{\"items\": [{\"n\": 1}, {\"n\": 2}, {\"n\": 3}]}", "$.items");
    s_expect (schema, "{\"items\": [{\"n\": 1}, {\"n\": 10}]}", "$.items[1].n");
    s_expect (schema, "{\"items\": [{\"n\": -1}]}", "$.items[0].n");
    s_expect (schema, "{\"items\": [{\"n\": 1.5}]}", "$.items[0].n");
    s_expect (schema, "{\"items\": [{}]}", "$.items[0]");
    s_expect (schema, "{\"name\": \"\u00e9\"}", "$.name");
    s_expect (schema, "{\"name\": \"abcd\"}", "$.name");
    s_expect (schema, "{\"amount\": 101}", "$.amount");
    s_expect (schema, "{\"amount\": \"some\"}", "$.amount");
    s_expect (schema, "{\"flag\": \"yes\"}", "$.flag");
    json_decref (schema);

    /* schemas it cannot enforce in full are refused, naming where */
    struct {
        const char *schema;
        const char *says;
    } refused[] = {
        {"{\"type\": \"string\", \"pattern\": \"^a\"}", "schema: the keyword pattern is not supported"},
        {"{\"properties\": {\"a\": {\"$ref\": \"#/x\"}}}", "schema.properties.a: the keyword $ref is not supported"},
        {"{\"type\": \"text\"}", "schema: type names no JSON type"},
        {"{\"type\": []}", "schema: type must be"},
        {"{\"enum\": []}", "schema: enum must be"},
        {"{\"required\": [1]}", "schema: required must be"},
        {"{\"items\": 3}", "schema.items: a schema must be"},
        {"{\"anyOf\": [{\"oneOf\": []}]}", "schema.anyOf[0]: the keyword oneOf"},
        {"{\"maxLength\": -1}", "schema: maxLength must be"},
        {"{\"minimum\": \"0\"}", "schema: minimum must be a number"},
        {"[]", "schema: a schema must be"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        schema = s_json (refused[i].schema);
        cv_assert_that (cv_json_schema_check (schema, &err) == -1 && err.code == CV_ERR_INVALID
                            && strncmp (err.message, refused[i].says, strlen (refused[i].says)) == 0,
                        "%s: %s", refused[i].schema, err.message);
        json_decref (schema);
    }
    /* too deep to check */
    char deep[1024] = "";
    for (int i = 0; i < 40; i++)
        strcat (deep, "{\"items\": ");
    strcat (deep, "true");
    for (int i = 0; i < 40; i++)
        strcat (deep, "}");
    schema = s_json (deep);
    assert (cv_json_schema_check (schema, &err) == -1 && strstr (err.message, "nests too deep"));
    json_decref (schema);
    if (verbose)
        printf ("cv_json_schema: ok\n");
}
