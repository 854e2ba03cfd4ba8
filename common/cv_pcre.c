/* PCRE2 compiled and bounded the same way for every pattern table of conveyor's. */
#include "cv_pcre.h"

#include <string.h>

#include "cv_alloc.h"

/* Bounds a match's work: the patterns are simple, the texts at most a few kB. */
#define S_MATCH_LIMIT 100000
#define S_DEPTH_LIMIT 1000

pcre2_match_context *
cv_pcre_context_new (void)
{
    pcre2_match_context *context = pcre2_match_context_create (NULL);
    if (context) {
        pcre2_set_match_limit (context, S_MATCH_LIMIT);
        pcre2_set_depth_limit (context, S_DEPTH_LIMIT);
    }
    return context;
}

char *
cv_pcre_subject (const char *text, size_t size)
{
    char *subject = cv_calloc (1, size + 1 + CV_PCRE_PAD);
    memcpy (subject, text, size);
    return subject;
}

pcre2_code *
cv_pcre_compile (const char *pattern, uint32_t options, const char *what, cv_error_t *err)
{
    int code = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code *compiled = pcre2_compile ((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED, options, &code, &offset, NULL);
    if (!compiled) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message (code, message, sizeof message);
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "the %s pattern does not compile: %s at offset %zu", what,
                      (const char *) message, (size_t) offset);
        return NULL;
    }
    (void) pcre2_jit_compile (compiled, PCRE2_JIT_COMPLETE); /* else the interpreter runs it */
    return compiled;
}
