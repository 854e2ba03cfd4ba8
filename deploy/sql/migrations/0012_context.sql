-- 0012_context: the conversation before a request's text.
--
-- A chat client sends the whole conversation with each message; the OpenAI front door (and a
-- submission's `context`) keeps its latest user and assistant turns with the request, an array of
-- {"role", "content"} objects, oldest first, so that a request resumed after a restart gives its
-- reply's writer the same conversation. NULL when the client sent none. A follow-up after a
-- person's approval copies its parent's.

alter table requests add column context jsonb
    check (context is null or jsonb_typeof(context) = 'array');
