/* The knowledge-base search that `kind: kb_search` tools run: one fixed, parameterised statement
   over the demo bank's articles (bank.kb_articles: slug, intent, title, body and their tsvector,
   the title weighted above the body; see deploy/sql/migrations), run through gatherer_sql like
   any SQL tool, so timeouts, cancelling and results are the same.

     tools:
       kb_answers:
         kind: kb_search
         query: text                  -- context path of the search text, default text
         intent: intent.name          -- optional: a context path (it has a dot) or an intent name
         max_rows: 3                  -- 1..1000, default 3
         timeout_ms: 1000

   The text is never part of the statement: it is parameter $1, read by websearch_to_tsquery with
   every word made an alternative (an article matches when it holds any of them; articles holding
   more of them, and rarer ones, rank higher). Rows, best first: slug, title, snippet (the body's
   passage that matches best, plain text) and rank (ts_rank, as text). A text without a word to
   search for finds nothing. */
#ifndef GATHERER_KB_H
#define GATHERER_KB_H

#include <stdbool.h>

#define GATHERER_KB_QUERY_DEFAULT "text"
#define GATHERER_KB_MAX_ROWS_DEFAULT 3

/* The statement a kb_search tool runs: $1 the search text; with by_intent, $2 the intent whose
   articles it keeps (NULL keeps all); last ($2 or $3), how many rows at most. Static text. */
const char *gatherer_kb_statement (bool by_intent);

void gatherer_kb_test (bool verbose);

#endif
