/* Building a request's URL from a template and values, each value percent-escaped, so that what
   a customer typed (a tracking number, a currency) can only ever be one path segment or one query
   value, never a new path, host or parameter: the URL counterpart of SQL's parameters.

   A template is a URL with placeholders "{name}": "http://bankapi:8090/v1/fx/{base}/{quote}".
   "{{" and "}}" stand for literal braces. Every byte of a value but the unreserved ones
   (A-Z a-z 0-9 - . _ ~) is escaped as %XX (curl_easy_escape), "/" and "?" included; a value that
   is "." or ".." is refused, since libcurl would read it as a dot segment and go up the path. The
   result must parse as an http:// or https:// URL (libcurl's URL parser, CURLU). */
#ifndef CV_HTTP_URL_H
#define CV_HTTP_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_error.h"

/* The URL template with each {name} replaced by the escaped value of the count names/values
   given (values may not be NULL); a new string, the caller's to free. NULL with err for an
   unknown or unclosed placeholder, a stray brace, or a result that is not an http(s) URL. */
char *cv_http_url_build (const char *url_template, size_t count, const char *const *names, const char *const *values,
                         cv_error_t *err) CV_MUST_CHECK;

/* Appends name=value to url's query ("?" first, "&" after), both escaped; a new string, the
   caller's to free. url is borrowed. */
char *cv_http_url_add_query (const char *url, const char *name, const char *value);

/* value percent-escaped as above; a new string, the caller's to free. */
char *cv_http_url_escape (const char *value);

void cv_http_url_test (bool verbose);

#endif
