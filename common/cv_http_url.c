/* Building request URLs from templates, with every value escaped. */
#include "cv_http_url.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_buffer.h"

/* A URL longer than this is refused (no server takes one much longer). */
#define URL_MAX (64 * 1024)

char *
cv_http_url_escape (const char *value)
{
    assert (value);
    size_t size = strlen (value);
    assert (size <= INT32_MAX);
    char *escaped = curl_easy_escape (NULL, value, (int) size);
    cv_assert_that (escaped, "curl_easy_escape: out of memory");
    char *copy = cv_strdup (escaped);
    curl_free (escaped);
    return copy;
}

/* Whether url parses as an absolute http(s) URL; err says why not. */
static bool
s_valid (const char *url, cv_error_t *err)
{
    CURLU *parsed = curl_url ();
    cv_assert_that (parsed, "curl_url: out of memory");
    CURLUcode code = curl_url_set (parsed, CURLUPART_URL, url, 0);
    char *scheme = NULL;
    if (code == CURLUE_OK)
        code = curl_url_get (parsed, CURLUPART_SCHEME, &scheme, 0);
    bool valid = code == CURLUE_OK && (strcmp (scheme, "http") == 0 || strcmp (scheme, "https") == 0);
    if (code != CURLUE_OK)
        cv_error_set (err, CV_ERR_INVALID, "url", "not a URL: %s", curl_url_strerror (code));
    else if (!valid)
        cv_error_set (err, CV_ERR_INVALID, "url", "the scheme must be http or https, not %s", scheme);
    curl_free (scheme);
    curl_url_cleanup (parsed);
    return valid;
}

static bool
s_append (cv_buffer_t *out, const char *bytes, size_t size)
{
    return cv_buffer_append (out, bytes, size, URL_MAX);
}

char *
cv_http_url_build (const char *url_template, size_t count, const char *const *names, const char *const *values,
                   cv_error_t *err)
{
    assert (url_template && (count == 0 || (names && values)));
    cv_buffer_t out = {0};
    bool fits = true;
    for (const char *at = url_template; *at && fits;) {
        if ((at[0] == '{' && at[1] == '{') || (at[0] == '}' && at[1] == '}')) {
            fits = s_append (&out, at, 1);
            at += 2;
            continue;
        }
        if (*at == '}') {
            cv_buffer_release (&out);
            cv_error_set (err, CV_ERR_INVALID, "url", "a stray '}' at offset %zu of %s", (size_t) (at - url_template),
                          url_template);
            return NULL;
        }
        if (*at != '{') {
            size_t run = strcspn (at, "{}");
            fits = s_append (&out, at, run);
            at += run;
            continue;
        }
        const char *close = strchr (at, '}');
        if (!close) {
            cv_buffer_release (&out);
            cv_error_set (err, CV_ERR_INVALID, "url", "an unclosed '{' in %s", url_template);
            return NULL;
        }
        size_t length = (size_t) (close - at - 1);
        size_t i = 0;
        while (i < count && !(strlen (names[i]) == length && memcmp (names[i], at + 1, length) == 0))
            i++;
        if (i == count) {
            cv_buffer_release (&out);
            cv_error_set (err, CV_ERR_INVALID, "url", "no value for {%.*s} in %s", (int) length, at + 1, url_template);
            return NULL;
        }
        assert (values[i]);
        if (strcmp (values[i], ".") == 0 || strcmp (values[i], "..") == 0) {
            cv_buffer_release (&out);
            cv_error_set (err, CV_ERR_INVALID, "url", "{%.*s} cannot be '%s': libcurl would remove it as a dot segment",
                          (int) length, at + 1, values[i]);
            return NULL;
        }
        char *escaped = cv_http_url_escape (values[i]);
        fits = s_append (&out, escaped, strlen (escaped));
        free (escaped);
        at = close + 1;
    }
    if (!fits) {
        cv_buffer_release (&out);
        cv_error_set (err, CV_ERR_INVALID, "url", "the URL would be over %d bytes", URL_MAX);
        return NULL;
    }
    char *url = cv_strdup (out.data ? out.data : "");
    cv_buffer_release (&out);
    if (!s_valid (url, err)) {
        free (url);
        return NULL;
    }
    return url;
}

char *
cv_http_url_add_query (const char *url, const char *name, const char *value)
{
    assert (url && name && value);
    char *escaped_name = cv_http_url_escape (name);
    char *escaped_value = cv_http_url_escape (value);
    const char *separator = strchr (url, '?') ? "&" : "?";
    char *result = cv_asprintf ("%s%s%s=%s", url, separator, escaped_name, escaped_value);
    free (escaped_name);
    free (escaped_value);
    return result;
}

/*  --------------------------------------------------------------------------
    Self-test */

static void
s_expect (const char *url_template, size_t count, const char *const *names, const char *const *values,
          const char *expected)
{
    cv_error_t err = {0};
    char *url = cv_http_url_build (url_template, count, names, values, &err);
    cv_assert_that (url, "%s: %s", url_template, err.message);
    cv_assert_that (strcmp (url, expected) == 0, "%s gave %s, not %s", url_template, url, expected);
    free (url);
}

static void
s_refuse (const char *url_template, size_t count, const char *const *names, const char *const *values,
          const char *reason)
{
    cv_error_t err = {0};
    char *url = cv_http_url_build (url_template, count, names, values, &err);
    cv_assert_that (!url, "%s built %s", url_template, url ? url : "");
    cv_assert_that (strstr (err.message, reason), "%s: %s, not %s", url_template, err.message, reason);
}

void
cv_http_url_test (bool verbose)
{
    const char *names[] = {"base", "quote", "tracking"};
    const char *plain[] = {"EUR", "GBP", "CP482913374IE"};
    s_expect ("http://127.0.0.1:8090/v1/fx/{base}/{quote}", 2, names, plain, "http://127.0.0.1:8090/v1/fx/EUR/GBP");
    s_expect ("https://h/v1/deliveries/{tracking}?x=1", 3, names, plain, "https://h/v1/deliveries/CP482913374IE?x=1");
    s_expect ("http://h/{{literal}}/{base}", 1, names, plain, "http://h/{literal}/EUR");
    s_expect ("http://h/plain", 0, NULL, NULL, "http://h/plain");

    /* a value can only ever be one segment: separators, dots, spaces and non-ASCII are escaped */
    const char *hostile[] = {"../../admin?x=1&y=2#f", "a b/c", "café"};
    s_expect ("http://h/v1/fx/{base}/{quote}/{tracking}", 3, names, hostile,
              "http://h/v1/fx/..%2F..%2Fadmin%3Fx%3D1%26y%3D2%23f/a%20b%2Fc/caf%C3%A9");
    const char *at_sign[] = {"evil.example@"};
    s_refuse ("http://{base}h/x", 1, names, at_sign, "not a URL"); /* never a user name */

    /* ... and never a dot segment, which would go up the path */
    const char *dots[] = {"..", "."};
    s_refuse ("http://h/v1/fx/EUR/{base}", 1, names, dots, "{base} cannot be '..'");
    s_refuse ("http://h/v1/fx/EUR/{quote}", 2, names, dots, "{quote} cannot be '.'");
    const char *more_dots[] = {"...", ".x"};
    s_expect ("http://h/{base}/{quote}", 2, names, more_dots, "http://h/.../.x");

    s_refuse ("http://h/{nope}", 1, names, plain, "no value for {nope}");
    s_refuse ("http://h/{base", 1, names, plain, "unclosed");
    s_refuse ("http://h/base}", 1, names, plain, "stray");
    s_refuse ("ftp://h/{base}", 1, names, plain, "scheme must be http or https");
    s_refuse ("not a url {base}", 1, names, plain, "not a URL");

    char *url = cv_http_url_add_query ("http://h/search", "q", "lost card & more");
    assert (strcmp (url, "http://h/search?q=lost%20card%20%26%20more") == 0);
    char *more = cv_http_url_add_query (url, "page size", "2");
    assert (strcmp (more, "http://h/search?q=lost%20card%20%26%20more&page%20size=2") == 0);
    free (url);
    free (more);
    char *escaped = cv_http_url_escape ("A-z.0_9~/");
    assert (strcmp (escaped, "A-z.0_9~%2F") == 0);
    free (escaped);
    if (verbose)
        printf ("cv_http_url: ok\n");
}
