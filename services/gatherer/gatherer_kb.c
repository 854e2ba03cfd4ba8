/* The knowledge-base search statement of kb_search tools. */
#include "gatherer_kb.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* Non-word characters become " or ", so that each word is an alternative for
   websearch_to_tsquery (which also drops the stop words) and quotes or a leading '-' in the
   customer's text are not read as its phrase or negation syntax. The best rows are chosen
   first, so that only they get a snippet, the costly part. */
#define KB_BEST                                                                                                        \
    "SELECT slug, title,"                                                                                              \
    " ts_headline ('english', body, q, 'MaxWords=50, MinWords=30, StartSel=\"\", StopSel=\"\"') AS snippet,"           \
    " rank::text AS rank"                                                                                              \
    " FROM (SELECT a.slug, a.title, a.body, q, ts_rank (a.tsv, q) AS rank"                                             \
    " FROM bank.kb_articles a,"                                                                                        \
    " websearch_to_tsquery ('english', regexp_replace (coalesce ($1::text, ''), '\\W+', ' or ', 'g')) AS q"            \
    " WHERE a.tsv @@ q"
#define KB_ORDER(limit) " ORDER BY rank DESC, a.slug LIMIT " limit "::integer) best ORDER BY rank DESC, slug"

const char *
gatherer_kb_statement (bool by_intent)
{
    return by_intent ? KB_BEST " AND ($2::text IS NULL OR a.intent = $2::text)" KB_ORDER ("$3")
                     : KB_BEST KB_ORDER ("$2");
}

/*  --------------------------------------------------------------------------
    Self-test (the searches themselves run in gatherer_sql's, against the fixture) */

void
gatherer_kb_test (bool verbose)
{
    const char *all = gatherer_kb_statement (false), *one = gatherer_kb_statement (true);
    assert (strstr (all, "websearch_to_tsquery ('english', regexp_replace (coalesce ($1::text"));
    assert (strstr (all, "WHERE a.tsv @@ q ORDER BY rank DESC, a.slug LIMIT $2::integer) best"));
    assert (!strstr (all, "$3"));
    assert (strstr (one, "a.intent = $2::text) ORDER BY rank DESC, a.slug LIMIT $3::integer) best"));
    assert (gatherer_kb_statement (true) == one); /* static */
    if (verbose)
        printf ("gatherer_kb: ok\n");
}
