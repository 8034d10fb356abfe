// dialects.test.mjs: the OpenAI-compatible dialects of real upstreams (issue 13), byte for byte, through the
// real gateway to the real `openai` npm SDK: tool calls in every shape (no index, restated ids, object
// arguments, no ids), what the gateway does not interpret passed through (reasoning_content, annotations,
// choices of n > 1), stream ends without [DONE], usage conventions, provider error shapes, streams labelled
// text/plain, NDJSON or a whole JSON completion. The upstream simulator's raw turns ("garbage" + "raw")
// send each provider's exact bytes; a few lines of node:http stand in where the label itself is the quirk.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import OpenAI from 'openai';
import { startSim, startGateway, EVERYTHING_SERVER } from './gateway.mjs';

const TEST_TIMEOUT = 30000;
const USER = [{ role: 'user', content: 'hello' }];
const servers = () => ({ everything: { command: EVERYTHING_SERVER, args: ['stdio'] } });
const sdk = gw => new OpenAI({ apiKey: 'sk-client', baseURL: gw.v1, maxRetries: 0, timeout: 20000 });

/** an SSE body: each object as one data event, then [DONE] unless done is false */
const sse = (events, done = true) =>
	events.map(e => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`).join('') + (done ? 'data: [DONE]\n\n' : '');
/** a chunk with these choices (objects: {delta, finish_reason?, ...}; index = position unless given) */
const chunk = (choices, extra = {}) => ({
	id: 'chatcmpl-up', object: 'chat.completion.chunk', created: 1, model: 'sim-model',
	choices: choices.map((c, i) => ({ index: i, finish_reason: null, ...c })), ...extra,
});
const delta = (d, extra = {}) => chunk([{ delta: d, ...extra }]);
const finish = (reason, extra = {}) => chunk([{ delta: {}, finish_reason: reason }], extra);
/** a raw turn: these bytes as the answer */
const raw = text => ({ garbage: text, raw: true });

/** iterate an SDK stream: chunks, content, reasoning, finish reasons, usage */
async function collect(stream) {
	const out = { chunks: [], content: '', reasoning: '', finish: [], usage: [], byChoice: {} };
	for await (const c of stream) {
		out.chunks.push(c);
		if (c.usage) out.usage.push(c.usage);
		for (const ch of c.choices ?? []) {
			const d = ch.delta ?? {};
			out.byChoice[ch.index] = (out.byChoice[ch.index] ?? '') + (d.content ?? '');
			if (ch.index === 0 && typeof d.content === 'string') out.content += d.content;
			if (typeof d.reasoning_content === 'string') out.reasoning += d.reasoning_content;
			if (ch.finish_reason) out.finish.push([ch.index, ch.finish_reason]);
		}
	}
	return out;
}

async function apiError(fn) {
	try { await fn(); } catch (e) { return e; }
	assert.fail('expected an error, the call succeeded');
}

describe('upstream dialects through the simulator (raw provider bytes)', { timeout: 120000 }, () => {
	let sim, gw, client;

	before(async () => {
		sim = await startSim();
		gw = await startGateway({ upstream: sim.v1, servers, env: { MCPGW_UPSTREAM_RETRIES: '0' } });
		client = sdk(gw);
	});
	after(async () => {
		await gw?.stop();
		await sim?.stop();
	});

	test('Ollama/Gemini: two calls in one chunk, each its own id, no index: both MCP calls run (streamed and not)', { timeout: TEST_TIMEOUT }, async () => {
		const calls = [
			{ id: 'call_o1', type: 'function', function: { name: 'echo', arguments: '{"message":"one"}' } },
			{ id: 'call_o2', type: 'function', function: { name: 'get-sum', arguments: '{"a":2,"b":3}' } },
		];
		for (const stream of [true, false]) {
			await sim.reset();
			const first = stream
				? raw(sse([delta({ role: 'assistant', content: null, tool_calls: calls }), finish('tool_calls')]))
				: raw(JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'sim-model',
					choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: calls }, finish_reason: 'tool_calls' }] }));
			await sim.script([first, { content: 'both done' }]);
			const r = stream
				? await collect(await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true }))
				: await client.chat.completions.create({ model: 'sim-model', messages: USER });
			assert.equal(stream ? r.content : r.choices[0].message.content, 'both done');
			const reqs = await sim.requests();
			assert.equal(reqs.length, 2);
			const tools = reqs[1].body.messages.filter(m => m.role === 'tool');
			assert.deepEqual(tools.map(m => m.tool_call_id), ['call_o1', 'call_o2'], `stream ${stream}`);
			assert.match(tools[0].content, /one/);
			assert.match(tools[1].content, /5/);
			assert.equal(reqs[1].status, 200, 'the history was accepted');
		}
	});

	test('DashScope/Qwen: continuation chunks restating "id": "" (and repeating the id) keep every fragment', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			raw(sse([
				delta({ role: 'assistant', content: '', tool_calls: [{ index: 0, id: 'call_q1', type: 'function', function: { name: 'echo', arguments: '{"mes' } }] }),
				delta({ tool_calls: [{ index: 0, id: '', type: 'function', function: { arguments: 'sage":"q' } }] }),
				delta({ tool_calls: [{ index: 0, id: 'call_q1', type: 'function', function: { name: 'echo', arguments: 'wen"}' } }] }),
				finish('tool_calls'),
			])),
			{ content: 'echoed' },
		]);
		const r = await collect(await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true }));
		assert.equal(r.content, 'echoed');
		const reqs = await sim.requests();
		const a = reqs[1].body.messages.find(m => m.role === 'assistant');
		assert.equal(a.tool_calls[0].function.arguments, '{"message":"qwen"}');
		assert.match(reqs[1].body.messages.find(m => m.role === 'tool').content, /qwen/);
	});

	test('a call without id, arguments as a JSON object: an id is minted, the tool runs, the history matches', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			raw(sse([delta({ role: 'assistant', tool_calls: [{ function: { name: 'echo', arguments: { message: 'objargs' } } }] }), finish('tool_calls')])),
			{ content: 'ok' },
		]);
		const r = await collect(await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true }));
		assert.equal(r.content, 'ok');
		const reqs = await sim.requests();
		const a = reqs[1].body.messages.find(m => m.role === 'assistant');
		assert.match(a.tool_calls[0].id, /^call_[A-Za-z0-9]{24}$/);
		assert.equal(a.tool_calls[0].function.arguments, '{"message":"objargs"}');
		const t = reqs[1].body.messages.find(m => m.role === 'tool');
		assert.equal(t.tool_call_id, a.tool_calls[0].id);
		assert.match(t.content, /objargs/);
	});

	test('the client\'s own calls in a provider shape reach it in OpenAI\'s: index, id, arguments as text', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		const weather = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };
		await sim.script([raw(sse([
			delta({ role: 'assistant', tool_calls: [
				{ id: 'call_w1', function: { name: 'get_weather', arguments: { city: 'Oslo' } } },
				{ id: 'call_w2', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } },
			] }),
			finish('tool_calls'),
		]))]);
		const final = await client.chat.completions.stream({ model: 'sim-model', messages: USER, tools: [weather] }).finalChatCompletion();
		const tc = final.choices[0].message.tool_calls;
		// streamed with MCP tools offered: ids the gateway minted (the mixed-batch history is bound to them, issue 14)
		assert.deepEqual(tc.map(c => [c.function.name, c.function.arguments]),
			[['get_weather', '{"city":"Oslo"}'], ['get_weather', '{"city":"Rome"}']]);
		for (const c of tc) assert.match(c.id, /^call_[A-Za-z0-9]{24}$/);
		assert.notEqual(tc[0].id, tc[1].id);
		assert.equal(final.choices[0].finish_reason, 'tool_calls');
	});

	test('DeepSeek thinking mode: streamed reasoning_content reaches the client and goes back with the tool round', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			raw(sse([
				delta({ role: 'assistant', content: null, reasoning_content: 'I should ' }),
				delta({ content: null, reasoning_content: 'echo.' }),
				delta({ tool_calls: [{ index: 0, id: 'call_d1', type: 'function', function: { name: 'echo', arguments: '{"message":"think"}' } }] }),
				finish('tool_calls'),
			])),
			{ content: 'thought and done', match: '"reasoning_content":"I should echo."' },
			// what DeepSeek answers a tool round sent back without it
			{ error: { status: 400, message: 'The `reasoning_content` in the thinking mode must be passed back to the API.', type: 'invalid_request_error' } },
		]);
		const r = await collect(await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true }));
		assert.equal(r.reasoning, 'I should echo.');
		assert.equal(r.content, 'thought and done', 'the second round matched only with the reasoning sent back');
		const reqs = await sim.requests();
		assert.equal(reqs[1].body.messages.find(m => m.role === 'assistant').reasoning_content, 'I should echo.');
	});

	test('text of two rounds, streamed: each round\'s content and reasoning_content after the last round\'s a blank line apart, never run together', { timeout: TEST_TIMEOUT }, async () => {
		const round1 = () => raw(sse([
			delta({ role: 'assistant', content: 'Let me look.', reasoning_content: 'I should ' }),
			delta({ reasoning_content: 'echo.' }),
			delta({ tool_calls: [{ index: 0, id: 'call_s1', type: 'function', function: { name: 'echo', arguments: '{"message":"sep"}' } }] }),
			finish('tool_calls'),
		]));
		const round2 = () => raw(sse([
			delta({ role: 'assistant', content: null, reasoning_content: 'Done' }),
			delta({ reasoning_content: ' now.' }),
			delta({ content: 'It said ' }),
			delta({ content: 'sep.' }),
			finish('stop'),
		]));
		await sim.reset();
		await sim.script([round1(), round2()]);
		const r = await collect(await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true }));
		assert.equal(r.content, 'Let me look.\n\nIt said sep.');
		assert.equal(r.reasoning, 'I should echo.\n\nDone now.');
		// what goes back upstream is each round's own text, as the upstream wrote it
		const reqs = await sim.requests();
		const back = reqs[1].body.messages.find(m => m.role === 'assistant');
		assert.equal(back.content, 'Let me look.');
		assert.equal(back.reasoning_content, 'I should echo.');
		// a round with no text of its own after one with text: nothing added
		await sim.reset();
		await sim.script([round1(), raw(sse([delta({ role: 'assistant', content: null }), delta({ content: 'Only this.' }), finish('stop')]))]);
		const r2 = await collect(await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true }));
		assert.equal(r2.content, 'Let me look.\n\nOnly this.');
		assert.equal(r2.reasoning, 'I should echo.');
	});

	test('Azure: an MCP call\'s deltas beside content_filter_results {} leave no empty chunk for the client', { timeout: TEST_TIMEOUT }, async () => {
		const cf = { content_filter_results: {} };
		await sim.reset();
		await sim.script([
			raw(sse([
				delta({ role: 'assistant', content: null }, cf),
				delta({ tool_calls: [{ index: 0, id: 'call_az1', type: 'function', function: { name: 'echo', arguments: '' } }] }, cf),
				delta({ tool_calls: [{ index: 0, function: { arguments: '{"message":"az"}' } }] }, cf),
				finish('tool_calls'),
			])),
			raw(sse([delta({ role: 'assistant', content: 'fine' }, { content_filter_results: { hate: { filtered: false, severity: 'safe' } } }), finish('stop')])),
		]);
		const r = await collect(await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true }));
		assert.equal(r.content, 'fine');
		const empty = r.chunks.filter(c => c.choices?.length && c.choices.every(ch => ch.finish_reason == null && Object.keys(ch.delta ?? {}).length === 0));
		assert.deepEqual(empty, [], 'chunks with nothing for the client');
		assert.ok(r.chunks.some(c => c.choices?.[0]?.content_filter_results?.hate), 'a filter result that says something passes');
	});

	test('unknown members pass through: delta, choice and chunk extras, streamed and not', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([raw(sse([
			delta({ role: 'assistant', content: 'See', annotations: [{ type: 'url_citation', url_citation: { url: 'https://x' } }] },
				{ logprobs: { content: [{ token: 'See', logprob: -0.1 }] }, native_finish_reason: null }),
			chunk([{ delta: { content: ' this', reasoning: 'r' } }], { citations: ['https://x'] }),
			finish('stop'),
		]))]);
		const r = await collect(await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true }));
		assert.equal(r.content, 'See this');
		assert.deepEqual(r.chunks[0].choices[0].delta.annotations, [{ type: 'url_citation', url_citation: { url: 'https://x' } }]);
		assert.equal(r.chunks[0].choices[0].logprobs.content[0].token, 'See');
		assert.deepEqual(r.chunks[1].citations, ['https://x']);
		assert.equal(r.chunks[1].choices[0].delta.reasoning, 'r');
		await sim.script([raw(JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'sim-model', citations: ['https://y'],
			choices: [{ index: 0, message: { role: 'assistant', content: 'Plain', reasoning_content: 'why' }, finish_reason: 'stop', stop_reason: null }] }))]);
		const p = await client.chat.completions.create({ model: 'sim-model', messages: USER });
		assert.equal(p.choices[0].message.reasoning_content, 'why');
		assert.deepEqual(p.citations, ['https://y']);
		assert.ok('stop_reason' in p.choices[0]);
	});

	test('n = 2: every choice intact, streamed (each its own finish_reason) and not', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([raw(sse([
			chunk([{ delta: { role: 'assistant', content: 'A1' } }, { delta: { role: 'assistant', content: 'B1' } }]),
			chunk([{ delta: { content: 'A2' } }, { delta: { content: 'B2' } }]),
			chunk([{ index: 1, delta: {}, finish_reason: 'length' }]),
			finish('stop'),
		]))]);
		const r = await collect(await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true, n: 2 }));
		assert.deepEqual(r.byChoice, { 0: 'A1A2', 1: 'B1B2' });
		assert.deepEqual(r.finish.sort(), [[0, 'stop'], [1, 'length']]);
		await sim.script([raw(JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'sim-model',
			choices: [0, 1].map(i => ({ index: i, message: { role: 'assistant', content: `C${i}` }, finish_reason: 'stop' })) }))]);
		const p = await client.chat.completions.create({ model: 'sim-model', messages: USER, n: 2 });
		assert.deepEqual(p.choices.map(c => c.message.content), ['C0', 'C1']);
	});

	test('llama.cpp: a finished stream without data: [DONE] is complete; one without finish_reason is truncated', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([raw(sse([delta({ role: 'assistant', content: 'no done' }), finish('stop')], false))]);
		const r = await collect(await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true }));
		assert.equal(r.content, 'no done');
		assert.deepEqual(r.finish, [[0, 'stop']]);
		await sim.script([raw(sse([delta({ role: 'assistant', content: 'cut' })], false))]);
		const e = await apiError(async () => {
			for await (const c of await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true })) void c;
		});
		assert.match(String(e.message), /truncated|ended|finished/i);
	});

	test('usage in every convention: the true total of all rounds, never counted twice', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		const u = (p, c) => ({ prompt_tokens: p, completion_tokens: c, total_tokens: p + c });
		await sim.script([
			// cumulative in every chunk (vLLM continuous_usage_stats), repeated in a trailing chunk
			raw(sse([
				{ ...delta({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_u1', function: { name: 'echo', arguments: '{"message":"u"}' } }] }), usage: u(10, 1) },
				finish('tool_calls', { usage: u(10, 2) }),
				{ ...chunk([]), usage: u(10, 2) },
			])),
			// Groq: x_groq.usage only
			raw(sse([delta({ role: 'assistant', content: 'fine' }), finish('stop', { x_groq: { id: 'req_1', usage: u(20, 3) } })])),
		]);
		const r = await collect(await client.chat.completions.create({
			model: 'sim-model', messages: USER, stream: true, stream_options: { include_usage: true },
		}));
		assert.equal(r.content, 'fine');
		assert.equal(r.usage.length, 1);
		assert.deepEqual([r.usage[0].prompt_tokens, r.usage[0].completion_tokens, r.usage[0].total_tokens], [30, 5, 35]);
		// non-streamed: usage without total_tokens gets one
		await sim.script([raw(JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'sim-model',
			choices: [{ index: 0, message: { role: 'assistant', content: 'p' }, finish_reason: 'stop' }], usage: { prompt_tokens: 4, completion_tokens: 1 } }))]);
		const p = await client.chat.completions.create({ model: 'sim-model', messages: USER });
		assert.equal(p.usage.total_tokens, 5);
	});

	test('provider error shapes arrive as OpenAI error objects with the upstream status', { timeout: TEST_TIMEOUT }, async () => {
		const shapes = [
			['{"error":"model not loaded"}', 'application/json', 404],
			['{"detail":"model not loaded"}', 'application/json', 400],
			['{"detail":[{"loc":["body","model"],"msg":"model not loaded","type":"value_error"}]}', 'application/json', 422],
			['[{"error":{"code":400,"message":"model not loaded","status":"INVALID_ARGUMENT"}}]', 'application/json', 400],
			['{"object":"error","message":"model not loaded","type":"BadRequestError","param":null,"code":400}', 'application/json', 400],
		];
		for (const [body, ct, status] of shapes) {
			await sim.reset();
			await sim.script([{ error: { status, body, content_type: ct } }]);
			const e = await apiError(() => client.chat.completions.create({ model: 'sim-model', messages: USER }));
			assert.ok(e instanceof OpenAI.APIError, `${body}: ${e}`);
			assert.equal(e.status, status, body);
			assert.match(e.error?.message ?? '', /model not loaded/, body);
			assert.ok('type' in e.error && 'param' in e.error && 'code' in e.error, `${body}: ${JSON.stringify(e.error)}`);
			assert.ok(e.error.code === null || typeof e.error.code === 'string', `${body}: code ${JSON.stringify(e.error.code)}`);
		}
		// HTML from a proxy: ours, naming what came
		await sim.script([{ error: { status: 502, body: '<html><title>502 Bad Gateway</title></html>' } }]);
		const e = await apiError(() => client.chat.completions.create({ model: 'sim-model', messages: USER }));
		assert.equal(e.status, 502);
		assert.equal(e.error.code, 'upstream_bad_response');
		assert.match(e.error.message, /Bad Gateway/);
		// vLLM's error object inside a stream
		await sim.script([raw(sse([delta({ role: 'assistant', content: 'a' }), '{"object":"error","message":"engine died","type":"InternalServerError","param":null,"code":500}']))]);
		const s = await apiError(async () => {
			for await (const c of await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true })) void c;
		});
		assert.match(String(s.message), /engine died/);
	});
});

describe('upstream dialects: answers labelled otherwise than text/event-stream', { timeout: 120000 }, () => {
	let upstream, gw, client, port;
	const queue = [];
	before(async () => {
		// one answer per request from the queue, exactly as given (status, content type, body)
		upstream = http.createServer((req, res) => {
			req.resume();
			req.on('end', () => {
				const a = queue.shift() ?? { type: 'application/json', body: '{"error":{"message":"queue empty"}}', status: 500 };
				res.writeHead(a.status ?? 200, { 'content-type': a.type });
				res.end(a.body);
			});
		});
		await new Promise(r => upstream.listen(0, '127.0.0.1', r));
		port = upstream.address().port;
		// credentials in the URL (a proxy's basic auth): they must never reach a log line or an error
		gw = await startGateway({ upstream: `http://u:secretpw@127.0.0.1:${port}/v1`, servers, env: { MCPGW_UPSTREAM_RETRIES: '0' } });
		client = sdk(gw);
	});
	after(async () => {
		await gw?.stop();
		await new Promise(r => upstream?.close(r) ?? r());
	});

	for (const [label, type, body] of [
		['text/plain', 'text/plain; charset=utf-8', () => sse([delta({ role: 'assistant', content: 'plain ' }), delta({ content: 'label' }), finish('stop')])],
		['application/x-ndjson', 'application/x-ndjson', () => [delta({ role: 'assistant', content: 'nd' }), delta({ content: 'json' }), finish('stop')].map(c => JSON.stringify(c) + '\n').join('')],
		['application/json (a whole completion to a stream request)', 'application/json', () => JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'm',
			choices: [{ index: 0, message: { role: 'assistant', content: 'whole answer' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } })],
	]) {
		test(`a stream labelled ${label} is read, not refused`, { timeout: TEST_TIMEOUT }, async () => {
			queue.push({ type, body: body() });
			const r = await collect(await client.chat.completions.create({ model: 'm', messages: USER, stream: true, stream_options: { include_usage: true } }));
			assert.equal(r.content, { 'text/plain': 'plain label', 'application/x-ndjson': 'ndjson' }[label] ?? 'whole answer');
			assert.deepEqual(r.finish, [[0, 'stop']]);
		});
	}

	test('a request without stream answered with an event stream anyway: one chat.completion, its tool round run', { timeout: TEST_TIMEOUT }, async () => {
		queue.push({ type: 'text/event-stream', body: sse([
			delta({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_e1', type: 'function', function: { name: 'echo', arguments: '{"message":"e"}' } }] }),
			finish('tool_calls'),
		]) });
		queue.push({ type: 'text/event-stream', body: sse([delta({ role: 'assistant', content: 'events ' }), delta({ content: 'read' }), finish('stop', { usage: { prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 } })]) });
		const r = await client.chat.completions.create({ model: 'm', messages: USER });
		assert.equal(r.object, 'chat.completion');
		assert.equal(r.choices[0].message.content, 'events read');
		assert.equal(r.choices[0].finish_reason, 'stop');
		assert.equal(r.usage.total_tokens, 4);
	});

	test('what cannot be read is logged with the upstream URL (no credentials) and an excerpt, the rest goes on', { timeout: TEST_TIMEOUT }, async () => {
		queue.push({ type: 'text/event-stream', body: sse([
			delta({ role: 'assistant', content: 'still ', tool_calls: [42, { function: { arguments: '{"orphan":1}' } }] }),
			delta({ content: 'here' }),
			finish('stop'),
		]) });
		const r = await collect(await client.chat.completions.create({ model: 'm', messages: USER, stream: true }));
		assert.equal(r.content, 'still here');
		const log = fs.readFileSync(path.join(gw.state, 'responders.log'), 'utf8');
		const url = `http://127.0.0.1:${port}/v1/chat/completions`;
		assert.ok(log.includes(`upstream ${url}: a tool call delta that is not an object: 42`), log.slice(-2000));
		assert.ok(log.includes(`upstream ${url}: a tool call delta with no id, index or name that continues no call (skipped): {"function":{"arguments":"{\\"orphan\\":1}"}}`), log.slice(-2000));
		assert.ok(!log.includes('secretpw'), 'the upstream URL\'s password is in the log');
		queue.push({ type: 'text/html', status: 503, body: '<html>down</html>' });
		const e = await apiError(() => client.chat.completions.create({ model: 'm', messages: USER }));
		assert.ok(!JSON.stringify(e.error).includes('secretpw'), JSON.stringify(e.error));
		assert.ok(JSON.stringify(e.error).includes(`127.0.0.1:${port}`), JSON.stringify(e.error));
	});

	test('a whole completion with a tool call to a stream request: the tool round runs', { timeout: TEST_TIMEOUT }, async () => {
		queue.push({ type: 'application/json', body: JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'm',
			choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_j1', type: 'function', function: { name: 'echo', arguments: '{"message":"j"}' } }] }, finish_reason: 'tool_calls' }] }) });
		queue.push({ type: 'text/event-stream', body: sse([delta({ role: 'assistant', content: 'after tool' }), finish('stop')]) });
		const r = await collect(await client.chat.completions.create({ model: 'm', messages: USER, stream: true }));
		assert.equal(r.content, 'after tool');
	});
});
