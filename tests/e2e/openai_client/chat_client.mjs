// The official openai client for JavaScript against conveyor's OpenAI-compatible front door, as an
// application would use it: the models, a plain completion, a streamed one, and a mistake.
// Usage: node chat_client.mjs BASE_URL MODEL USER. Each check prints "ok: ..." on stderr and throws
// at its first surprise; at the end one line of JSON on stdout gives the request ids it made, for
// the calling test to look up in conveyor's own API.
import assert from "node:assert/strict";
import OpenAI from "openai";

const [baseURL, model, user] = process.argv.slice(2);
if (!baseURL || !model || !user) {
  console.error("usage: node chat_client.mjs BASE_URL MODEL USER");
  process.exit(2);
}
const ok = (what) => console.error(`ok: ${what}`);
// No retries: a failure must show as it happened, not be papered over by the client.
const client = new OpenAI({ baseURL, apiKey: "unused-by-conveyor", maxRetries: 0, timeout: 30000 });

const models = [];
for await (const entry of client.models.list()) models.push(entry);
assert.deepEqual(models.map((entry) => entry.id), [model], "the agent is the one model");
ok(`models.list() names the agent, ${model}`);

const plain = await client.chat.completions
  .create({
    model,
    user,
    messages: [
      { role: "system", content: "You are a bank." },
      { role: "user", content: "I lost my card" },
    ],
  })
  .withResponse();
const completion = plain.data;
assert.equal(completion.object, "chat.completion");
assert.equal(completion.model, model);
assert.equal(completion.choices.length, 1);
assert.equal(completion.choices[0].message.role, "assistant");
assert.match(completion.choices[0].message.content, /4417/, "the reply names the frozen card");
assert.equal(completion.choices[0].finish_reason, "stop");
assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + completion.usage.completion_tokens);
assert.match(plain.request_id ?? "", /^r-/, "X-Request-Id is conveyor's request id");
assert.equal(completion.id, `chatcmpl-${plain.request_id}`);
ok(`chat.completions.create() answers: ${JSON.stringify(completion.choices[0].message.content)}`);

const stream = await client.chat.completions
  .create({
    model,
    user,
    stream: true,
    messages: [{ role: "user", content: "What is the exchange rate for USD?" }],
  })
  .withResponse();
let content = "";
let finish = null;
let chunks = 0;
let streamId = null;
for await (const chunk of stream.data) {
  chunks++;
  assert.equal(chunk.object, "chat.completion.chunk");
  streamId ??= chunk.id;
  assert.equal(chunk.id, streamId, "every chunk has the completion's id");
  content += chunk.choices[0]?.delta?.content ?? "";
  finish = chunk.choices[0]?.finish_reason ?? finish;
}
assert.ok(chunks >= 2, `${chunks} chunks`);
assert.match(content, /1 EUR = [0-9.]+ USD/, "the streamed reply gives the rate");
assert.equal(finish, "stop");
assert.equal(streamId, `chatcmpl-${stream.request_id}`);
ok(`a streamed completion, ${chunks} chunks: ${JSON.stringify(content)}`);

// The same, through the client's stream helper, which accumulates the chunks itself.
const helper = client.chat.completions.stream({
  model,
  user,
  messages: [{ role: "user", content: "What is the exchange rate for USD?" }],
});
const final = await helper.finalChatCompletion();
assert.match(final.choices[0].message.content, /1 EUR = [0-9.]+ USD/);
ok("chat.completions.stream() accumulates the same reply");

await assert.rejects(
  client.chat.completions.create({ model: "gpt-4o", user, messages: [{ role: "user", content: "hi" }] }),
  (error) => {
    assert.ok(error instanceof OpenAI.NotFoundError, `${error}`);
    assert.equal(error.status, 404);
    assert.equal(error.param, "model");
    assert.equal(error.type, "invalid_request_error");
    return true;
  },
);
await assert.rejects(
  client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] }),
  (error) => error instanceof OpenAI.BadRequestError && error.param === "user",
);
ok("mistakes come back as the client's own error classes, with status, type and param");

console.log(JSON.stringify({ plain: plain.request_id, stream: stream.request_id }));
