#!/usr/bin/env node
// sdk-check.mjs: feed the simulator's output to the real `openai` npm SDK and check that it
// accepts it (non-streamed, streamed, the .stream() helper, errors, models, embeddings).
// Needs `openai` installed under tests/node_modules (npm ci in tests/). Exit 0 = all good,
// 1 = a check failed, 77 = the SDK is not installed (skip). Prints one line per check.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

let OpenAI;
try {
	({ default: OpenAI } = await import('openai'));
} catch {
	console.log('sdk-check: the openai package is not installed; skipping');
	process.exit(77);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const KEY = 'sk-sim-test-key';
const sim = spawn(process.execPath, [path.join(here, 'sim.mjs'), '--port', '0', '--api-key', KEY], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve, reject) => {
	const rl = createInterface({ input: sim.stdout });
	rl.once('line', l => { const m = /^LISTENING (\d+)$/.exec(l); m ? resolve(Number(m[1])) : reject(new Error(`bad first line: ${l}`)); });
	sim.once('exit', c => reject(new Error(`sim exited ${c}`)));
});
const base = `http://127.0.0.1:${port}`;
const client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0 });

async function script(turns) {
	const r = await fetch(`${base}/_sim/script`, { method: 'POST', body: JSON.stringify(turns) });
	if (!r.ok) throw new Error(`script: ${r.status}`);
}
async function control(p, method = 'GET') { return (await fetch(`${base}${p}`, { method })).json(); }

function assert(cond, msg) { if (!cond) throw new Error(msg); }
function eq(a, b, msg) { assert(JSON.stringify(a) === JSON.stringify(b), `${msg}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`); }

const TOOLS = [
	{ type: 'function', function: { name: 'read_query', description: 'run SQL', parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] } } },
	{ type: 'function', function: { name: 'echo', parameters: { type: 'object', properties: { message: { type: 'string' } } } } },
];
const MSGS = [{ role: 'user', content: 'hello' }];
const TWO_CALLS = [{ name: 'read_query', arguments: { query: 'SELECT 1' } }, { name: 'echo', arguments: { message: 'hi, "quoted" ünïcode ✓' } }];

function checkCalls(calls) {
	eq(calls.length, 2, 'tool call count');
	eq(calls.map(c => c.function.name), ['read_query', 'echo'], 'tool names');
	eq(JSON.parse(calls[0].function.arguments), { query: 'SELECT 1' }, 'call 0 args');
	eq(JSON.parse(calls[1].function.arguments), { message: 'hi, "quoted" ünïcode ✓' }, 'call 1 args');
	for (const c of calls) assert(/^call_[A-Za-z0-9]{24}$/.test(c.id) && c.type === 'function', `tool call id/type ${c.id} ${c.type}`);
}

const checks = [];
const check = (name, fn) => checks.push([name, fn]);

check('create: text answer', async () => {
	await script([{ content: 'Hello there' }]);
	const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: MSGS });
	eq(r.object, 'chat.completion', 'object');
	eq(r.choices[0].message.content, 'Hello there', 'content');
	eq(r.choices[0].finish_reason, 'stop', 'finish_reason');
	eq(r.model, 'gpt-4o-mini', 'model echoed');
	assert(r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, 'usage sums');
});

check('create: default echo turn', async () => {
	const r = await client.chat.completions.create({ model: 'sim-model', messages: [{ role: 'user', content: 'ping' }] });
	eq(r.choices[0].message.content, 'sim: ping', 'echo');
});

check('create: tool calls', async () => {
	await script([{ tool_calls: TWO_CALLS }]);
	const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: MSGS, tools: TOOLS });
	eq(r.choices[0].finish_reason, 'tool_calls', 'finish_reason');
	eq(r.choices[0].message.content, null, 'content null');
	checkCalls(r.choices[0].message.tool_calls);
});

check('create stream: text, include_usage', async () => {
	await script([{ content: 'Hello there, streaming world', chunks: 4 }]);
	const s = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: MSGS, stream: true, stream_options: { include_usage: true } });
	let text = '', finishes = [], usage = null, n = 0;
	for await (const ch of s) {
		n++;
		eq(ch.object, 'chat.completion.chunk', 'chunk object');
		if (ch.usage) { usage = ch.usage; eq(ch.choices, [], 'usage chunk has no choices'); continue; }
		const c = ch.choices[0];
		if (c.delta.content) text += c.delta.content;
		if (c.finish_reason) finishes.push(c.finish_reason);
	}
	eq(text, 'Hello there, streaming world', 'assembled text');
	eq(finishes, ['stop'], 'one finish_reason');
	assert(usage && usage.total_tokens > 0, 'usage chunk');
	eq(n, 1 + 4 + 1 + 1, 'chunk count (role, 4 content, finish, usage)');
});

check('create stream: tool calls assembled by index', async () => {
	await script([{ tool_calls: TWO_CALLS, interleave: true, arg_chunks: 4 }]);
	const s = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: MSGS, tools: TOOLS, stream: true });
	const calls = [];
	let finish = null;
	for await (const ch of s) {
		const c = ch.choices[0];
		for (const d of c.delta.tool_calls ?? []) {
			if (d.id) calls[d.index] = { id: d.id, type: d.type, function: { name: d.function.name, arguments: d.function.arguments ?? '' } };
			else calls[d.index].function.arguments += d.function.arguments;
		}
		if (c.finish_reason) finish = c.finish_reason;
	}
	eq(finish, 'tool_calls', 'finish_reason');
	checkCalls(calls);
});

for (const interleave of [false, true]) {
	check(`.stream() finalChatCompletion: tool calls${interleave ? ' (interleaved)' : ''}`, async () => {
		await script([{ tool_calls: TWO_CALLS, interleave }]);
		const st = client.chat.completions.stream({ model: 'gpt-4o-mini', messages: MSGS, tools: TOOLS, stream_options: { include_usage: true } });
		const fin = await st.finalChatCompletion();
		eq(fin.choices[0].finish_reason, 'tool_calls', 'finish_reason');
		checkCalls(fin.choices[0].message.tool_calls);
		assert(fin.usage && fin.usage.completion_tokens > 0, 'usage in final completion');
	});
}

check('.stream() finalChatCompletion: text then tool call', async () => {
	await script([{ content: 'Let me look that up.', tool_calls: [TWO_CALLS[0]] }]);
	const fin = await client.chat.completions.stream({ model: 'gpt-4o-mini', messages: MSGS, tools: TOOLS }).finalChatCompletion();
	eq(fin.choices[0].message.content, 'Let me look that up.', 'content');
	eq(fin.choices[0].message.tool_calls.length, 1, 'one call');
	eq(fin.choices[0].finish_reason, 'tool_calls', 'finish_reason');
});

check('.stream() finalContent / refusal / length', async () => {
	await script([{ content: 'Hello there', chunks: 3 }, { refusal: "I can't help with that." }, { content: 'partial', finish_reason: 'length' }]);
	eq(await client.chat.completions.stream({ model: 'gpt-4o-mini', messages: MSGS }).finalContent(), 'Hello there', 'finalContent');
	const r = await client.chat.completions.stream({ model: 'gpt-4o-mini', messages: MSGS }).finalChatCompletion();
	eq(r.choices[0].message.refusal, "I can't help with that.", 'refusal');
	const l = await client.chat.completions.stream({ model: 'gpt-4o-mini', messages: MSGS }).finalChatCompletion();
	eq(l.choices[0].finish_reason, 'length', 'length');
});

check('429 with retry-after is retried by the SDK, next turn served', async () => {
	await control('/_sim/reset', 'POST');
	await script([{ error: { status: 429, retry_after: 1, retry_after_ms: 20 } }, { content: 'after retry' }]);
	const c = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 2 });
	const r = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: MSGS });
	eq(r.choices[0].message.content, 'after retry', 'content after retry');
	eq((await control('/_sim/stats')).requests, 2, 'two upstream requests');
});

check('errors map to SDK error classes', async () => {
	await script([{ error: { status: 500, message: 'boom' } }, { error: { status: 503 } }]);
	const expectErr = async (p, cls, status, code) => {
		try { await p; } catch (e) {
			assert(e instanceof cls, `expected ${cls.name}, got ${e.constructor.name}: ${e.message}`);
			eq(e.status, status, 'status');
			if (code !== undefined) eq(e.code, code, 'code');
			return e;
		}
		throw new Error(`expected ${cls.name}`);
	};
	const e = await expectErr(client.chat.completions.create({ model: 'gpt-4o-mini', messages: MSGS }), OpenAI.InternalServerError, 500);
	assert(e.message.includes('boom'), 'message');
	await expectErr(client.chat.completions.create({ model: 'gpt-4o-mini', messages: MSGS }), OpenAI.InternalServerError, 503);
	await expectErr(client.chat.completions.create({ model: 'nope-model', messages: MSGS }), OpenAI.NotFoundError, 404, 'model_not_found');
	const bad = new OpenAI({ apiKey: 'sk-wrong-key-123456', baseURL: `${base}/v1`, maxRetries: 0 });
	await expectErr(bad.chat.completions.create({ model: 'gpt-4o-mini', messages: MSGS }), OpenAI.AuthenticationError, 401, 'invalid_api_key');
	await expectErr(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'tool', tool_call_id: 'x', content: 'orphan' }] }), OpenAI.BadRequestError, 400);
	await expectErr(client.models.retrieve('nope-model'), OpenAI.NotFoundError, 404, 'model_not_found');
});

check('broken stream and garbage make the SDK fail', async () => {
	await script([{ content: 'one two three four', break_after_chunks: 2 }, { garbage: 'not json at all' }]);
	let failed = false;
	try { for await (const _ of await client.chat.completions.create({ model: 'gpt-4o-mini', messages: MSGS, stream: true })); } catch { failed = true; }
	assert(failed, 'broken stream did not fail');
	failed = false;
	try { await client.chat.completions.create({ model: 'gpt-4o-mini', messages: MSGS, stream: true }).then(async s => { for await (const _ of s); }); } catch { failed = true; }
	assert(failed, 'garbage stream did not fail');
});

check('models list and retrieve', async () => {
	const ids = [];
	for await (const m of client.models.list()) ids.push(m.id);
	assert(ids.includes('gpt-4o-mini') && ids.includes('sim-model'), `models: ${ids}`);
	const m = await client.models.retrieve('sim-model');
	eq([m.id, m.object], ['sim-model', 'model'], 'retrieve');
});

check('embeddings: SDK base64 default decodes to the float answer; dimensions', async () => {
	const a = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'] });
	const b = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'], encoding_format: 'float' });
	eq(a.data.length, 2, 'two vectors');
	eq(a.data[0].embedding.length, 1536, 'dims');
	eq(Array.from(a.data[0].embedding), b.data[0].embedding, 'base64 == float');
	assert(JSON.stringify(a.data[0].embedding) !== JSON.stringify(a.data[1].embedding), 'distinct inputs, distinct vectors');
	const d = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'alpha', dimensions: 8, encoding_format: 'float' });
	eq(d.data[0].embedding.length, 8, 'dimensions honoured');
	const norm = Math.sqrt(d.data[0].embedding.reduce((s, x) => s + x * x, 0));
	assert(Math.abs(norm - 1) < 1e-5, `unit norm ${norm}`);
});

let failed = 0;
for (const [name, fn] of checks) {
	try {
		await fn();
		console.log(`ok - ${name}`);
	} catch (e) {
		failed++;
		console.log(`not ok - ${name}: ${e.stack ?? e}`);
	}
}
const exp = await control('/_sim/expectations');
sim.kill('SIGTERM');
console.log(failed ? `sdk-check: ${failed} of ${checks.length} failed` : `sdk-check: all ${checks.length} passed`);
process.exit(failed || !exp.ok ? 1 : 0);
