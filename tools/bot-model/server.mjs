// The bot's generator as a real small instruction model, for scripts/bench only (BENCH_BOT_MODEL=1;
// never scripts/setup, scripts/test or CI). It answers Workers AI's text-generation REST path,
// `POST /ai/run/<any model name>` with `messages`, `response_format`, `max_tokens` and
// `temperature`, inside Workers AI's envelope (`{"result": {"response", "model"}, "success",
// "errors", "messages"}`, as tools/embedder answers it), so the local stack's bot asks it exactly
// what it asks Workers AI in production. The messages are laid out in the model's chat format, a
// JSON schema in `response_format` is enforced as a grammar, and what the model wrote is `response`
// (the object; its text when it did not finish one, which the bot reads as unreadable). One
// generation at a time on one thread: requests wait their turn, and one whose caller has gone is
// dropped. The part of a prompt that repeats the one before (the bot's opening and rules, or the
// whole prompt when the bot retries) is not read again. `GET /health` answers once the model is
// loaded.
//
//   node tools/bot-model/server.mjs [--port N] [--model FILE.gguf]
//
// The port is --port, else BOT_MODEL_PORT, else 0 (any free one); the model is --model, else
// BOT_MODEL_PATH, else the one .gguf file install.sh put in .model/. Its first line on stdout is
// `listening on http://127.0.0.1:PORT`, written once the model is loaded.
import { readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LlamaChat, getLlama, resolveChatWrapper } from 'node-llama-cpp';

/** Prompt and answer share one context: ~3,000 tokens of facts and rules, then the answer. */
const CONTEXT_TOKENS = 4096;
/** Workers AI's defaults for its text-generation models. */
const DEFAULT_MAX_TOKENS = 256;
const DEFAULT_TEMPERATURE = 0.6;
const MAX_BODY_BYTES = 256 * 1024;
/** A fixed seed: the same request gets the same answer, so two bench runs compare. */
const SEED = 7;

const { values: args } = parseArgs({ options: { port: { type: 'string' }, model: { type: 'string' } } });
const here = dirname(fileURLToPath(import.meta.url));
const modelPath = args.model ?? process.env.BOT_MODEL_PATH ?? installedModel(join(here, '.model'));
const port = Number(args.port ?? process.env.BOT_MODEL_PORT ?? 0);
const MODEL_NAME = basename(modelPath, '.gguf').toLowerCase();

/** The single .gguf file of `dir`. */
function installedModel(dir) {
  let files = [];
  try {
    files = readdirSync(dir).filter((name) => name.endsWith('.gguf'));
  } catch {
    // Reported below as no model.
  }
  if (files.length !== 1) {
    console.error(`expected one .gguf file in ${dir}, found ${files.length}: run tools/bot-model/install.sh, or pass --model`);
    process.exit(1);
  }
  return join(dir, files[0]);
}

const loadStarted = performance.now();
const llama = await getLlama({ gpu: false, build: 'never', maxThreads: 1, logLevel: 'error' });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: CONTEXT_TOKENS, threads: 1 });
// One sequence for every request: the part of a prompt that repeats the last one (the bot's
// opening and rules) is not evaluated again.
const sequence = context.getSequence();
const chatWrapper = resolveChatWrapper(model);
const grammars = new Map();

/** A client error: answered with `status` and Workers AI's error shape. */
class BadRequest extends Error {
  constructor(message, status = 400, code = 5006) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The chat history node-llama-cpp takes, from Workers AI's `messages`. */
function history(messages) {
  if (!Array.isArray(messages) || messages.length === 0) throw new BadRequest('`messages` must be a non-empty array');
  const items = messages.map((message, at) => {
    const role = message?.role;
    const content = message?.content;
    if (typeof content !== 'string') throw new BadRequest(`messages[${at}].content must be a string`);
    if (role === 'system') return { type: 'system', text: content };
    if (role === 'user') return { type: 'user', text: content };
    if (role === 'assistant') return { type: 'model', response: [content] };
    throw new BadRequest(`messages[${at}].role must be system, user or assistant`);
  });
  if (items.at(-1).type !== 'user') throw new BadRequest('the last message must be the user\'s');
  return [...items, { type: 'model', response: [] }];
}

/** The grammar `response_format` asks for, or none (free text). */
async function grammarOf(format) {
  if (format === undefined || format === null) return null;
  if (format.type === 'json_object') return llama.getGrammarFor('json');
  if (format.type !== 'json_schema') throw new BadRequest('response_format.type must be json_schema or json_object');
  const schema = format.json_schema;
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    throw new BadRequest('response_format.json_schema must be a JSON schema object');
  }
  const key = JSON.stringify(schema);
  if (!grammars.has(key)) {
    try {
      grammars.set(key, await llama.createGrammarForJsonSchema(schema));
    } catch (error) {
      throw new BadRequest(`response_format.json_schema cannot be enforced: ${error.message}`);
    }
  }
  return grammars.get(key);
}

/** A number field of the request, within [min, max], or its default. */
function numberField(body, name, fallback, min, max, integer) {
  const value = body[name];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new BadRequest(`${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return value;
}

/** What a request asks for, checked before it waits for the thread. */
async function prepare(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('the body must be a JSON object');
  const chatHistory = history(body.messages);
  const maxTokens = numberField(body, 'max_tokens', DEFAULT_MAX_TOKENS, 1, 2048, true);
  const temperature = numberField(body, 'temperature', DEFAULT_TEMPERATURE, 0, 5, false);
  const { contextText } = chatWrapper.generateContextState({ chatHistory });
  const promptTokens = contextText.tokenize(model.tokenizer).length;
  if (promptTokens + maxTokens > CONTEXT_TOKENS) {
    throw new BadRequest(`the prompt is ${promptTokens} tokens: with max_tokens ${maxTokens} it passes the context of ${CONTEXT_TOKENS}`);
  }
  return { chatHistory, grammar: await grammarOf(body.response_format), maxTokens, temperature, promptTokens };
}

/** One generation: the envelope's `result`. */
async function generate({ chatHistory, grammar, maxTokens, temperature, promptTokens }, signal) {
  const chat = new LlamaChat({ contextSequence: sequence, chatWrapper, autoDisposeSequence: false });
  try {
    let completionTokens = 0;
    const answer = await chat.generateResponse(chatHistory, {
      grammar: grammar ?? undefined,
      maxTokens,
      temperature,
      seed: SEED,
      signal,
      onToken: (tokens) => {
        completionTokens += tokens.length;
      },
    });
    let response = answer.response;
    if (grammar) {
      try {
        response = grammar.parse(answer.response);
      } catch {
        // Cut off by max_tokens mid-object: the text goes back as written, and the bot's reader
        // says it is not an answer.
      }
    }
    return {
      response,
      model: MODEL_NAME,
      usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    };
  } finally {
    chat.dispose({ disposeSequence: false });
  }
}

/** Requests wait here for the one thread; each runs when the one before it has finished. */
let queue = Promise.resolve();
let waiting = 0;

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const failure = (code, message) => ({ result: null, success: false, errors: [{ code, message }], messages: [] });

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BadRequest(`the body is over ${MAX_BODY_BYTES} bytes`, 413);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new BadRequest(`the body is not JSON: ${error.message}`);
  }
}

const server = createServer(async (req, res) => {
  const path = new URL(req.url, 'http://local').pathname;
  if (path === '/health') {
    if (req.method !== 'GET') return send(res, 405, failure(7001, 'Method not allowed: this path takes GET'));
    return send(res, 200, { status: 'ok', model: MODEL_NAME, waiting });
  }
  if (!path.startsWith('/ai/run/') || path.length === '/ai/run/'.length) {
    return send(res, 404, failure(7000, 'No route for that URI'));
  }
  if (req.method !== 'POST') return send(res, 405, failure(7001, 'Method not allowed: this path takes POST'));
  // A caller that gives up (the bot's own timeout) frees its turn: its generation never starts, or
  // stops at its next token (a prompt being read is read to the end, and stays cached for a retry).
  const gone = new AbortController();
  res.on('close', () => {
    if (!res.writableEnded) gone.abort(new Error('the caller went away'));
  });
  const started = performance.now();
  let outcome;
  try {
    const asked = await prepare(await readBody(req));
    waiting += 1;
    const turn = queue.then(async () => {
      waiting -= 1;
      if (gone.signal.aborted) throw gone.signal.reason;
      return generate(asked, gone.signal);
    });
    queue = turn.catch(() => {});
    const result = await turn;
    outcome = `200 ${result.usage.prompt_tokens}+${result.usage.completion_tokens} tokens`;
    send(res, 200, { result, success: true, errors: [], messages: [] });
  } catch (error) {
    if (gone.signal.aborted) {
      outcome = 'dropped: the caller went away';
    } else if (error instanceof BadRequest) {
      outcome = `${error.status} ${error.message}`;
      send(res, error.status, failure(error.code, error.message));
    } else {
      outcome = `500 ${error.stack ?? error}`;
      send(res, 500, failure(5000, 'the model failed to run (see the server\'s log)'));
    }
  }
  console.error(`${new Date().toISOString()} POST ${path}: ${outcome} in ${Math.round(performance.now() - started)} ms`);
});

server.listen(port, '127.0.0.1', () => {
  const seconds = ((performance.now() - loadStarted) / 1000).toFixed(1);
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
  console.error(`${MODEL_NAME} loaded in ${seconds} s (${modelPath}; chat template: ${chatWrapper.wrapperName}; 1 thread)`);
});

// Stopped (by scripts/bench when the bench is done): at once, even mid-generation.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
