// chat.test.mjs: POST /v1/chat/completions end to end: the real `openai` npm SDK -> the real gateway
// (mcpgwctl: lighttpd + chat.fcgi + mcpgw-broker + the bundled SQLite server and server-everything)
// -> the OpenAI upstream simulator (tests/upstream-sim/sim.mjs), which validates every history it gets.
//
//   node --test tests/blackbox/            (MCPGW_BB_KEEP=1 keeps the gateways' temp homes)
//   SIM_PROFILE=deepseek node --test tests/blackbox/chat.test.mjs   (the upstream speaks that provider's dialect:
//   tests/upstream-sim/profiles.mjs; tool-call ids are then the ones that profile sends, see idIn)
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';
import { startSim, startGateway, freePort, defaultServers, SIM_PROFILE, UPSTREAM_KEY } from './gateway.mjs';
import { idsPredictable, wireId, errorBody, getProfile } from '../upstream-sim/profiles.mjs';

const CLIENT_KEY = 'sk-client-not-for-upstream';
const TEST_TIMEOUT = 30000;

const USER = [{ role: 'user', content: 'hello' }];
const WEATHER = {
	type: 'function',
	function: {
		name: 'get_weather', description: 'the weather in a city',
		parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
	},
};

// ---------------------------------------------------------------------------
// helpers

const sdk = gw => new OpenAI({ apiKey: CLIENT_KEY, baseURL: gw.v1, maxRetries: 0, timeout: 20000 });

/** one raw HTTP request to the gateway's chat endpoint */
async function chatFetch(gw, body, { method = 'POST', headers = {} } = {}) {
	const init = { method, headers: { 'content-type': 'application/json', accept: 'application/json', ...headers } };
	if (method !== 'GET' && method !== 'HEAD') init.body = typeof body === 'string' ? body : JSON.stringify(body);
	const r = await fetch(`${gw.v1}/chat/completions`, init);
	const text = await r.text();
	let json;
	try { json = JSON.parse(text); } catch { json = undefined; }
	return { status: r.status, headers: r.headers, text, json };
}

/** the data payloads and comment lines of an SSE body */
function parseSSE(text) {
	const data = [], comments = [];
	for (const block of text.split(/\r?\n\r?\n/)) {
		for (const line of block.split(/\r?\n/)) {
			if (line.startsWith(':')) comments.push(line.slice(1).trim());
			else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
		}
	}
	return { data, comments };
}

/** iterate an SDK stream, keeping every chunk with its arrival time */
async function collect(stream) {
	const out = { chunks: [], times: [], content: '', contentTimes: [], finish: [], ids: new Set(), toolDeltas: [], usage: [] };
	for await (const c of stream) {
		const t = performance.now();
		out.chunks.push(c);
		out.times.push(t);
		out.ids.add(c.id);
		if (c.usage) out.usage.push(c.usage);
		for (const ch of c.choices ?? []) {
			if (typeof ch.delta?.content === 'string' && ch.delta.content.length) {
				out.content += ch.delta.content;
				out.contentTimes.push(t);
			}
			if (ch.delta?.tool_calls) out.toolDeltas.push(...ch.delta.tool_calls);
			if (ch.finish_reason !== null && ch.finish_reason !== undefined) out.finish.push(ch.finish_reason);
		}
	}
	return out;
}

/** tool call deltas folded by index: [{index, id, name, arguments}] */
function foldToolDeltas(deltas) {
	const calls = [];
	for (const d of deltas) {
		const c = calls[d.index] ??= { index: d.index, ids: [], name: '', arguments: '' };
		if (d.id) c.ids.push(d.id);
		if (d.function?.name) c.name += d.function.name;
		if (d.function?.arguments) c.arguments += d.function.arguments;
	}
	return calls;
}

/** r is a chat.completion with one choice (fails with what came instead) */
function completion(r) {
	assert.ok(r && typeof r === 'object' && r.object === 'chat.completion' && r.choices?.[0]?.message,
		`not a chat.completion: ${typeof r === 'string' ? JSON.stringify(r.slice(0, 400)) : JSON.stringify(r)?.slice(0, 400)}`);
	return r;
}

// Tool-call ids under the upstream's profile (SIM_PROFILE): the simulator sends wireId(profile, scripted id),
// the scripted id itself under openai. Where the scripted id alone does not tell it (a profile that sends
// empty ids, which the gateway must mint, or positional ones), a call is found by its name and arguments.
const PREDICTABLE_IDS = idsPredictable(SIM_PROFILE);
/** the upstream request carries the gateway's own upstream key, as the profile's provider takes it
 * (Azure: the api-key header; everyone else: Authorization: Bearer) */
function assertUpstreamKey(req) {
	if (getProfile(SIM_PROFILE).request?.auth === 'api-key') assert.equal(req.headers['api-key'], UPSTREAM_KEY, 'the gateway uses its own upstream key');
	else assert.equal(req.headers.authorization, `Bearer ${UPSTREAM_KEY}`, 'the gateway uses its own upstream key');
}
/** the profile's base URL names one deployment (Azure): the model of a request does not choose it */
const PINNED_DEPLOYMENT = /\/openai\/deployments\/[^/]+\/?$/.test(getProfile(SIM_PROFILE).gateway_env?.({ base: 'http://x', v1: 'http://x/v1' })?.OPENAI_BASE_URL ?? '');
/** the error code the client sees for an upstream error whose OpenAI code is code: that code under
 * the openai profile; under another, the code the provider's own error shape carries (a number as a
 * string, or null when the shape has none), as the gateway passes it on */
function providerCode(status, code) {
	const b = errorBody(getProfile(SIM_PROFILE), status, { message: 'x', code });
	const o = Array.isArray(b) ? b[0]?.error : b && typeof b.error === 'object' ? b.error : b;
	return o?.code === undefined || o?.code === null ? null : String(o.code);
}
const scriptedCalls = new Map(); // scripted id -> {name, args}
const canonArgs = a => { try { return JSON.stringify(JSON.parse(a)); } catch { return a; } };
function rememberCalls(turns) {
	for (const t of Array.isArray(turns) ? turns : turns?.turns ?? []) {
		const seen = new Map(); // name + arguments -> how many calls of this turn had them so far
		for (const c of t?.tool_calls ?? []) {
			const args = typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments ?? {});
			const key = `${c.name}\n${canonArgs(args)}`;
			const k = seen.get(key) ?? 0;
			seen.set(key, k + 1);
			// k: the call's place among the turn's calls with the same name and arguments
			if (c.id) scriptedCalls.set(c.id, { name: c.name, args, k });
		}
	}
}
/** the id that the call scripted with id carries among calls (a tool_calls list) */
function idIn(calls, id) {
	if (PREDICTABLE_IDS) return wireId(SIM_PROFILE, id);
	const s = scriptedCalls.get(id);
	const same = (calls ?? []).filter(x => x?.function?.name === s?.name && canonArgs(x.function.arguments) === canonArgs(s.args));
	const c = same[s?.k ?? 0];
	assert.ok(c && typeof c.id === 'string' && c.id.length > 0, `the call scripted as ${id} (${s?.name}) has no id among ${JSON.stringify(calls)}`);
	return c.id;
}
/** folded stream deltas ({ids, name, arguments}) as a tool_calls list */
const asCalls = folded => folded.map(c => ({ id: c.ids[0], function: { name: c.name, arguments: c.arguments } }));
/** the ids of calls are those of the calls scripted as ids, in that order */
const assertIds = (calls, ids, what) => assert.deepEqual((calls ?? []).map(c => c.id), ids.map(id => idIn(calls, id)), what);

/** id is one the gateway minted for a client's call in a run that offers MCP tools ("call_" and 24 of
 * [A-Za-z0-9]: the mixed-batch history is bound to it), never the upstream's own */
const assertMinted = (id, what) => assert.match(id ?? '', /^call_[A-Za-z0-9]{24}$/, what ?? `a minted id: ${id}`);

const toolMsgs = body => body.messages.filter(m => m.role === 'tool');
/** the tool message answering the call scripted as id: found after the assistant message that holds
 * that call, since some providers repeat ids in every round (SGLang's "0", "1", ...) */
const toolMsg = (body, id) => {
	const msgs = body.messages;
	for (let i = 0; i < msgs.length; i++) {
		const calls = msgs[i].role === 'assistant' ? msgs[i].tool_calls ?? [] : [];
		let wid;
		try { wid = idIn(calls, id); } catch { continue; }
		if (!calls.some(c => c.id === wid)) continue;
		for (let j = i + 1; j < msgs.length && msgs[j].role === 'tool'; j++) if (msgs[j].tool_call_id === wid) return msgs[j];
	}
	return undefined;
};
const toolNames = body => (body.tools ?? []).map(t => t.function?.name);

/** every request the simulator got since the reset was accepted (200) by its history checks */
function assertAllAccepted(reqs) {
	for (const r of reqs) {
		assert.equal(r.status, 200, `upstream request #${r.seq} was answered ${r.status}` +
			(r.status === 400 ? ' (the simulator rejected the history)' : '') + `: ${JSON.stringify(r.body?.messages)}`);
	}
}

function assertUsage(got, want) {
	assert.ok(got, 'usage missing');
	assert.equal(got.prompt_tokens, want.prompt_tokens, `prompt_tokens in ${JSON.stringify(got)}`);
	assert.equal(got.completion_tokens, want.completion_tokens, `completion_tokens in ${JSON.stringify(got)}`);
	assert.equal(got.total_tokens, want.prompt_tokens + want.completion_tokens, `total_tokens in ${JSON.stringify(got)}`);
}

const usage = (p, c) => ({ prompt_tokens: p, completion_tokens: c });

/** the gateway still answers: a plain chat completion through the SDK and GET /v1/tools */
async function assertStillServing(gw, sim, tag) {
	await sim.reset();
	const r = await sdk(gw).chat.completions.create({ model: 'sim-model', messages: [{ role: 'user', content: `ping ${tag}` }] });
	assert.equal(r.choices[0].message.content, `sim: ping ${tag}`, 'a normal request after the failure');
	const t = await fetch(`${gw.v1}/tools`);
	assert.equal(t.status, 200, 'GET /v1/tools after the failure');
}

/** an APIError with that status thrown by fn */
async function expectAPIError(fn, status) {
	let err;
	try { await fn(); } catch (e) { err = e; }
	assert.ok(err, `expected an APIError ${status}, the call succeeded`);
	assert.ok(err instanceof OpenAI.APIError, `expected an OpenAI.APIError, got ${err?.constructor?.name}: ${err?.message}`);
	assert.equal(err.status, status, `status of ${err.message}`);
	return err;
}

// ---------------------------------------------------------------------------
// the main gateway: sqlite + everything, upstream timeout 1 s, 2 retries, alias fast=sim-model

describe('chat completions (sqlite + everything)', { timeout: 120000 }, () => {
	let sim, gw, client, mcpTools;

	before(async () => {
		sim = await startSim(['--api-key', UPSTREAM_KEY]);
		for (const k of ['script', 'append']) {
			const f = sim[k];
			sim[k] = turns => { rememberCalls(turns); return f(turns); };
		}
		gw = await startGateway({
			sim,
			// "off": configured but disabled, a name a request may use (it offers no tools)
			servers: home => ({ ...defaultServers(home), off: { command: '/nonexistent/off', disabled: true } }),
			env: {
				MCPGW_UPSTREAM_TIMEOUT: '1',
				MCPGW_UPSTREAM_RETRIES: '2',
				MCPGW_MODEL_ALIASES: 'fast=sim-model',
				MCPGW_MAX_BODY_BYTES: '65536',
				MCPGW_MAX_TOOL_OUTPUT_BYTES: '2048',
			},
		});
		client = sdk(gw);
		const r = await fetch(`${gw.v1}/tools?format=openai`);
		assert.equal(r.status, 200);
		mcpTools = (await r.json()).data;
		const names = mcpTools.map(t => t.function.name);
		for (const n of ['read_query', 'write_query', 'create_table', 'echo', 'get-sum', 'get-structured-content', 'trigger-long-running-operation']) {
			assert.ok(names.includes(n), `MCP tool ${n} missing from GET /v1/tools: ${names.join(', ')}`);
		}
	});
	after(async () => {
		await gw?.stop();
		await sim?.stop();
	});

	test('non-streaming multi-round loop on SQLite: rows reach the upstream, usage summed', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			{ tool_calls: [{ id: 'call_ns_create', name: 'create_table', arguments: { query: 'CREATE TABLE notes_ns(id INTEGER PRIMARY KEY, body TEXT)' } }], usage: usage(11, 1) },
			{ tool_calls: [{ id: 'call_ns_insert', name: 'write_query', arguments: { query: "INSERT INTO notes_ns(body) VALUES ('alpha note'), ('beta note')" } }], usage: usage(22, 2) },
			{ tool_calls: [{ id: 'call_ns_read', name: 'read_query', arguments: { query: 'SELECT id, body FROM notes_ns ORDER BY id' } }], usage: usage(33, 3) },
			{ content: 'There are 2 notes: alpha note and beta note.', usage: usage(44, 4) },
		]);
		const r = completion(await client.chat.completions.create({ model: 'sim-model', messages: [{ role: 'user', content: 'make notes' }] }));
		assert.equal(r.object, 'chat.completion');
		assert.equal(r.choices.length, 1);
		assert.equal(r.choices[0].message.content, 'There are 2 notes: alpha note and beta note.');
		assert.equal(r.choices[0].finish_reason, 'stop');
		assert.ok(!r.choices[0].message.tool_calls?.length, `no tool calls for the client: ${JSON.stringify(r.choices[0].message.tool_calls)}`);
		assertUsage(r.usage, usage(110, 10));

		const reqs = await sim.requests();
		assert.equal(reqs.length, 4, 'four upstream requests');
		assertAllAccepted(reqs);
		assertUpstreamKey(reqs[0]);
		assert.equal(reqs[0].body.stream ?? false, false);
		// the 4th request carries the whole history and the real rows
		const last = reqs[3].body;
		assert.deepEqual(last.messages.map(m => m.role), ['user', 'assistant', 'tool', 'assistant', 'tool', 'assistant', 'tool']);
		assert.equal(toolMsg(last, 'call_ns_insert').content.includes('2'), true, 'write_query result (affected rows)');
		const rows = JSON.parse(toolMsg(last, 'call_ns_read').content);
		assert.deepEqual(rows, [{ id: 1, body: 'alpha note' }, { id: 2, body: 'beta note' }]);
		assertIds(last.messages[5].tool_calls, ['call_ns_read']);
	});

	test('streaming multi-round loop with include_usage: one id, one finish_reason, no MCP deltas, summed usage', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		const content = 'Stored and read back: gamma, delta.';
		await sim.script([
			{ tool_calls: [{ id: 'call_s_create', name: 'create_table', arguments: { query: 'CREATE TABLE notes_s(id INTEGER PRIMARY KEY, body TEXT)' } }], usage: usage(5, 1) },
			{ tool_calls: [{ id: 'call_s_insert', name: 'write_query', arguments: { query: "INSERT INTO notes_s(body) VALUES ('gamma'), ('delta')" } }], usage: usage(6, 2), separate_role_chunk: true },
			{ tool_calls: [{ id: 'call_s_read', name: 'read_query', arguments: { query: 'SELECT body FROM notes_s ORDER BY id' } }], usage: usage(7, 3) },
			{ content, usage: usage(8, 4) },
		]);
		const stream = await client.chat.completions.create({
			model: 'sim-model', messages: [{ role: 'user', content: 'notes, streamed' }], stream: true, stream_options: { include_usage: true },
		});
		const got = await collect(stream);
		assert.equal(got.content, content, 'content reconstructed from the deltas');
		assert.equal(got.ids.size, 1, `one id for all chunks: ${[...got.ids].join(', ')}`);
		assert.deepEqual(got.finish, ['stop'], 'exactly one non-null finish_reason');
		assert.deepEqual(got.toolDeltas, [], 'no tool_calls deltas for MCP tools');
		assert.equal(got.usage.length, 1, 'one usage chunk');
		const usageChunk = got.chunks.at(-1);
		assert.deepEqual(usageChunk.choices, [], 'the usage chunk is the last one and has choices: []');
		assertUsage(usageChunk.usage, usage(26, 10));
		// the finish chunk comes before the usage chunk, content before the finish chunk
		const finishAt = got.chunks.findIndex(c => c.choices?.[0]?.finish_reason);
		assert.equal(finishAt, got.chunks.length - 2);

		const reqs = await sim.requests();
		assert.equal(reqs.length, 4);
		assertAllAccepted(reqs);
		for (const q of reqs) assert.equal(q.body.stream, true, 'each round is streamed upstream');
		assert.deepEqual(JSON.parse(toolMsg(reqs[3].body, 'call_s_read').content), [{ body: 'gamma' }, { body: 'delta' }]);
		// the assistant messages the gateway rebuilt from stream deltas carry the exact arguments
		const a = reqs[3].body.messages.filter(m => m.role === 'assistant');
		assert.deepEqual(a.map(m => JSON.parse(m.tool_calls[0].function.arguments).query), [
			'CREATE TABLE notes_s(id INTEGER PRIMARY KEY, body TEXT)',
			"INSERT INTO notes_s(body) VALUES ('gamma'), ('delta')",
			'SELECT body FROM notes_s ORDER BY id',
		]);
	});

	test('streaming raw: text/event-stream despite Accept: application/json, progress comments, [DONE] last', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			{ tool_calls: [{ id: 'call_raw_echo', name: 'echo', arguments: { message: 'raw' } }] },
			{ content: 'raw done' },
		]);
		const r = await chatFetch(gw, { model: 'sim-model', messages: USER, stream: true });
		assert.equal(r.status, 200);
		assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
		const { data, comments } = parseSSE(r.text);
		assert.equal(data.at(-1), '[DONE]', 'the stream ends with data: [DONE]');
		assert.equal(data.filter(d => d === '[DONE]').length, 1);
		assert.ok(comments.some(c => c.startsWith('mcpgw:') && c.includes('echo')), `a progress comment naming the tool: ${JSON.stringify(comments)}`);
		const chunks = data.slice(0, -1).map(d => JSON.parse(d));
		assert.ok(chunks.every(c => c.object === 'chat.completion.chunk'));
		assert.equal(chunks.map(c => c.choices[0]?.delta?.content ?? '').join(''), 'raw done');
		assert.ok(!PREDICTABLE_IDS || !r.text.includes(wireId(SIM_PROFILE, 'call_raw_echo')), 'the MCP call id never reaches the client');
	});

	test('.stream() helper finalChatCompletion() over server-everything rounds (echo, then get-sum)', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			{ tool_calls: [{ id: 'call_h_echo', name: 'echo', arguments: { message: 'hello mcp' } }], usage: usage(3, 1) },
			{ tool_calls: [{ id: 'call_h_sum', name: 'get-sum', arguments: { a: 2, b: 40 } }], usage: usage(4, 1) },
			{ content: 'The echo said hello mcp and the sum is 42.', usage: usage(5, 2) },
		]);
		const runner = client.chat.completions.stream({
			model: 'sim-model', messages: [{ role: 'user', content: 'echo and add' }], stream_options: { include_usage: true },
		});
		const final = await runner.finalChatCompletion();
		assert.equal(final.choices[0].message.content, 'The echo said hello mcp and the sum is 42.');
		assert.equal(final.choices[0].finish_reason, 'stop');
		assert.ok(!final.choices[0].message.tool_calls?.length, 'no tool calls in the final message');
		assertUsage(final.usage, usage(12, 4));

		const reqs = await sim.requests();
		assert.equal(reqs.length, 3);
		assertAllAccepted(reqs);
		assert.equal(toolMsg(reqs[2].body, 'call_h_echo').content, 'Echo: hello mcp');
		assert.equal(toolMsg(reqs[2].body, 'call_h_sum').content, 'The sum of 2 and 40 is 42.');
	});

	test('parallel MCP calls in one round: both results reach the upstream, run at the same time', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			{
				tool_calls: [
					{ id: 'call_p_slow1', name: 'trigger-long-running-operation', arguments: { duration: 0.8, steps: 1 } },
					{ id: 'call_p_read', name: 'read_query', arguments: { query: "SELECT 'parallel' AS word, 6*7 AS n" } },
					{ id: 'call_p_slow2', name: 'trigger-long-running-operation', arguments: { duration: 0.8, steps: 1 } },
					{ id: 'call_p_sum', name: 'get-sum', arguments: { a: 1, b: 2 } },
				],
			},
			{ content: 'all four done' },
		]);
		const r = completion(await client.chat.completions.create({ model: 'sim-model', messages: USER }));
		assert.equal(r.choices[0].message.content, 'all four done');
		const reqs = await sim.requests();
		assert.equal(reqs.length, 2);
		assertAllAccepted(reqs);
		const b = reqs[1].body;
		assert.deepEqual(b.messages.map(m => m.role), ['user', 'assistant', 'tool', 'tool', 'tool', 'tool']);
		assertIds(b.messages[1].tool_calls, ['call_p_slow1', 'call_p_read', 'call_p_slow2', 'call_p_sum']);
		assert.deepEqual(JSON.parse(toolMsg(b, 'call_p_read').content), [{ word: 'parallel', n: 42 }]);
		assert.equal(toolMsg(b, 'call_p_sum').content, 'The sum of 1 and 2 is 3.');
		assert.match(toolMsg(b, 'call_p_slow1').content, /Long running operation completed/);
		assert.match(toolMsg(b, 'call_p_slow2').content, /Long running operation completed/);
		// two 0.8 s calls: about 0.8 s when run in parallel, 1.6 s one after the other
		const gap = Date.parse(reqs[1].time) - Date.parse(reqs[0].time);
		assert.ok(gap >= 700, `the round took ${gap} ms, less than the tools' 800 ms`);
		assert.ok(gap < 1450, `the round took ${gap} ms: the calls of a round did not run in parallel`);
	});

	test('content deltas are forwarded as they arrive (first byte long before the upstream stream ends)', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			{ tool_calls: [{ id: 'call_t_echo', name: 'echo', arguments: { message: 'tick' } }] },
			{ content: 'one two three four five', chunks: 5, chunk_delay_ms: 300 },
		]);
		const t0 = performance.now();
		const got = await collect(await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true }));
		const end = performance.now();
		assert.equal(got.content, 'one two three four five');
		assert.ok(got.contentTimes.length >= 4, `content came in ${got.contentTimes.length} deltas, expected ~5`);
		const first = got.contentTimes[0] - t0, total = end - t0, lastContent = got.contentTimes.at(-1) - t0;
		assert.ok(total >= 1400, `the upstream stream lasts ~1.8 s, the client's ended after ${Math.round(total)} ms`);
		assert.ok(lastContent - first >= 900,
			`first content delta at ${Math.round(first)} ms, last at ${Math.round(lastContent)} ms (stream ended at ${Math.round(total)} ms): deltas were buffered`);
		assert.ok(first < total - 900, `first content delta at ${Math.round(first)} ms of ${Math.round(total)} ms`);
	});

	test('mixed batch, non-streaming: client gets only its call; its result comes back with the hidden MCP round restored', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			{
				tool_calls: [
					{ id: 'call_mx_mcp', name: 'read_query', arguments: { query: "SELECT 'Paris' AS city" } },
					{ id: 'call_mx_client', name: 'get_weather', arguments: { city: 'Paris' } },
				],
				usage: usage(10, 2),
			},
			{ content: 'Paris: sunny, 21 C.', usage: usage(20, 3) },
		]);
		const messages = [{ role: 'user', content: 'weather in the city from the db?' }];
		const r1 = completion(await client.chat.completions.create({ model: 'sim-model', messages, tools: [WEATHER] }));
		assert.equal(r1.choices[0].finish_reason, 'tool_calls');
		const calls = r1.choices[0].message.tool_calls;
		assert.equal(calls?.length, 1, `only the client's call: ${JSON.stringify(calls)}`);
		assertMinted(calls[0].id);
		assert.equal(calls[0].type, 'function');
		assert.equal(calls[0].function.name, 'get_weather');
		assert.deepEqual(JSON.parse(calls[0].function.arguments), { city: 'Paris' });
		assertUsage(r1.usage, usage(10, 2));
		// the hidden round is in the state store, under a digest (not the client's id), kept for MCPGW_SESSION_TTL
		const stored = execFileSync('sqlite3', ['-cmd', '.timeout 5000', path.join(gw.state, 'state.db'),
			`SELECT key, value, expires_ms - written_ms FROM kv WHERE ns = 'mixed-batch'`], { encoding: 'utf8' });
		const [key, entry, ttl] = stored.trim().split('|');
		assert.match(key, /^[0-9a-f]{64}$/, `stored: ${stored}`);
		const { hidden, ids } = JSON.parse(entry);
		assert.deepEqual(hidden.map(m => m.role), ['assistant', 'tool'], `stored: ${stored}`);
		assert.equal(hidden[1].tool_call_id, idIn(hidden[0].tool_calls, 'call_mx_mcp'));
		assert.equal(ids[calls[0].id], idIn(hidden[0].tool_calls, 'call_mx_client'), "the client's id maps to the upstream's");
		assert.equal(ttl, '86400000', 'MCPGW_SESSION_TTL');

		const r2 = completion(await client.chat.completions.create({
			model: 'sim-model', tools: [WEATHER],
			messages: [...messages, r1.choices[0].message, { role: 'tool', tool_call_id: calls[0].id, content: 'sunny, 21 C' }],
		}));
		assert.equal(r2.choices[0].message.content, 'Paris: sunny, 21 C.');
		assert.equal(r2.choices[0].finish_reason, 'stop');

		const reqs = await sim.requests();
		assert.equal(reqs.length, 2);
		assertAllAccepted(reqs);
		const b = reqs[1].body;
		assert.deepEqual(b.messages.map(m => m.role), ['user', 'assistant', 'tool', 'tool'], 'the complete history upstream');
		assertIds(b.messages[1].tool_calls, ['call_mx_mcp', 'call_mx_client'], 'the assistant message with both calls');
		assert.deepEqual(JSON.parse(toolMsg(b, 'call_mx_mcp').content), [{ city: 'Paris' }], 'the hidden MCP result restored');
		assert.equal(toolMsg(b, 'call_mx_client').content, 'sunny, 21 C');
		assert.equal(toolNames(b)[0], 'get_weather', "the client's tool is still first");
	});

	test('mixed batch, streaming: client tool call deltas renumbered from 0, MCP deltas hidden, history restored', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			{
				tool_calls: [
					{ id: 'call_ms_mcp1', name: 'echo', arguments: { message: 'hidden one' } },
					{ id: 'call_ms_client', name: 'get_weather', arguments: { city: 'Oslo' } },
					{ id: 'call_ms_mcp2', name: 'get-sum', arguments: { a: 5, b: 6 } },
				],
				arg_chunks: 3,
			},
			{ content: 'Oslo is cloudy and 5+6 is 11.' },
		]);
		const messages = [{ role: 'user', content: 'weather in Oslo, streamed' }];
		const got = await collect(await client.chat.completions.create({ model: 'sim-model', messages, tools: [WEATHER], stream: true }));
		assert.equal(got.ids.size, 1);
		assert.deepEqual(got.finish, ['tool_calls']);
		assert.ok(got.toolDeltas.length > 0, 'the client tool call is streamed');
		assert.ok(got.toolDeltas.every(d => d.index === 0), `client tool call deltas renumbered to index 0: ${JSON.stringify(got.toolDeltas)}`);
		const folded = foldToolDeltas(got.toolDeltas);
		assert.equal(folded.length, 1);
		assert.equal(folded[0].ids.length, 1, 'the id once, in the first delta');
		assertMinted(folded[0].ids[0]);
		assert.equal(folded[0].name, 'get_weather');
		assert.deepEqual(JSON.parse(folded[0].arguments), { city: 'Oslo' });

		const assistant = { role: 'assistant', content: null, tool_calls: [{ id: folded[0].ids[0], type: 'function', function: { name: 'get_weather', arguments: folded[0].arguments } }] };
		const got2 = await collect(await client.chat.completions.create({
			model: 'sim-model', tools: [WEATHER], stream: true,
			messages: [...messages, assistant, { role: 'tool', tool_call_id: folded[0].ids[0], content: 'cloudy' }],
		}));
		assert.equal(got2.content, 'Oslo is cloudy and 5+6 is 11.');
		assert.deepEqual(got2.finish, ['stop']);

		const reqs = await sim.requests();
		assert.equal(reqs.length, 2);
		assertAllAccepted(reqs);
		const b = reqs[1].body;
		assert.deepEqual(b.messages.map(m => m.role), ['user', 'assistant', 'tool', 'tool', 'tool']);
		assertIds(b.messages[1].tool_calls, ['call_ms_mcp1', 'call_ms_client', 'call_ms_mcp2']);
		assert.equal(toolMsg(b, 'call_ms_mcp1').content, 'Echo: hidden one');
		assert.equal(toolMsg(b, 'call_ms_mcp2').content, 'The sum of 5 and 6 is 11.');
		assert.equal(toolMsg(b, 'call_ms_client').content, 'cloudy');
	});

	test('mixed batch after an MCP-only round: every hidden round is restored once; later turns go without them', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			{ tool_calls: [{ id: 'call_mr_r1', name: 'echo', arguments: { message: 'round one' } }], usage: usage(1, 1) },
			{
				tool_calls: [
					{ id: 'call_mr_mcp', name: 'get-sum', arguments: { a: 20, b: 22 } },
					{ id: 'call_mr_client', name: 'get_weather', arguments: { city: 'Rome' } },
				],
				usage: usage(2, 1),
			},
			{ content: 'Rome is warm; the sum is 42.' },
			{ content: 'Still warm.' },
		]);
		const m1 = [{ role: 'user', content: 'two rounds then the weather' }];
		const r1 = completion(await client.chat.completions.create({ model: 'sim-model', messages: m1, tools: [WEATHER] }));
		assert.equal(r1.choices[0].finish_reason, 'tool_calls');
		assert.equal(r1.choices[0].message.tool_calls.length, 1);
		assertMinted(r1.choices[0].message.tool_calls[0].id);
		assertUsage(r1.usage, usage(3, 2));
		const m2 = [...m1, r1.choices[0].message, { role: 'tool', tool_call_id: r1.choices[0].message.tool_calls[0].id, content: 'warm' }];
		const r2 = completion(await client.chat.completions.create({ model: 'sim-model', messages: m2, tools: [WEATHER] }));
		assert.equal(r2.choices[0].message.content, 'Rome is warm; the sum is 42.');
		const m3 = [...m2, r2.choices[0].message, { role: 'user', content: 'and now?' }];
		const r3 = completion(await client.chat.completions.create({ model: 'sim-model', messages: m3, tools: [WEATHER] }));
		assert.equal(r3.choices[0].message.content, 'Still warm.');

		const reqs = await sim.requests();
		assert.equal(reqs.length, 4);
		assertAllAccepted(reqs);
		const want = ['user', 'assistant', 'tool', 'assistant', 'tool', 'tool'];
		assert.deepEqual(reqs[2].body.messages.map(m => m.role), want, 'second request: both hidden rounds restored');
		assertIds(reqs[2].body.messages[1].tool_calls, ['call_mr_r1']);
		assertIds(reqs[2].body.messages[3].tool_calls, ['call_mr_mcp', 'call_mr_client']);
		assert.equal(toolMsg(reqs[2].body, 'call_mr_r1').content, 'Echo: round one');
		assert.equal(toolMsg(reqs[2].body, 'call_mr_mcp').content, 'The sum of 20 and 22 is 42.');
		// the hidden rounds are used up once restored (no replay: issue 14): the third request carries the
		// conversation as the client has it, its call and result under the upstream's id (kept for later turns)
		assert.deepEqual(reqs[3].body.messages.map(m => m.role), ['user', 'assistant', 'tool', 'assistant', 'user'], 'third request: not restored again');
		assertIds(reqs[3].body.messages[1].tool_calls, ['call_mr_client']);
		assert.equal(reqs[3].body.messages[2].tool_call_id, reqs[3].body.messages[1].tool_calls[0].id);
		assert.ok(!JSON.stringify(reqs[3].body).includes('The sum of 20 and 22 is 42.'));
	});

	test('streaming: interleaved parallel calls and multibyte text cut across TCP writes', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		const TIME = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } };
		await sim.script([
			{
				content: 'Checking… ',
				tool_calls: [
					{ id: 'call_il_time', name: 'get_time', arguments: { tz: 'Europe/Zürich' } },
					{ id: 'call_il_echo', name: 'echo', arguments: { message: 'ünï ✓ 東京' } },
					{ id: 'call_il_weather', name: 'get_weather', arguments: { city: 'Zürich 🎉' } },
				],
				interleave: true, split_events: true, arg_chunks: 4,
			},
			{ content: 'Grüße aus Zürich — 東京 ✓ 🎉 fertig', split_events: true, chunks: 9 },
		]);
		const messages = [{ role: 'user', content: 'time and weather' }];
		const got = await collect(await client.chat.completions.create({ model: 'sim-model', messages, tools: [WEATHER, TIME], stream: true }));
		assert.equal(got.content, 'Checking… ');
		assert.deepEqual(got.finish, ['tool_calls']);
		const calls = foldToolDeltas(got.toolDeltas);
		assert.deepEqual(calls.map(c => [c.index, c.ids.length, c.name]), [[0, 1, 'get_time'], [1, 1, 'get_weather']],
			`client calls renumbered 0, 1: ${JSON.stringify(got.toolDeltas)}`);
		for (const c of calls) assertMinted(c.ids[0]);
		assert.deepEqual(JSON.parse(calls[0].arguments), { tz: 'Europe/Zürich' });
		assert.deepEqual(JSON.parse(calls[1].arguments), { city: 'Zürich 🎉' });

		const assistant = { role: 'assistant', content: 'Checking… ', tool_calls: calls.map(c => ({ id: c.ids[0], type: 'function', function: { name: c.name, arguments: c.arguments } })) };
		const got2 = await collect(await client.chat.completions.create({
			model: 'sim-model', tools: [WEATHER, TIME], stream: true,
			messages: [...messages, assistant, { role: 'tool', tool_call_id: calls[0].ids[0], content: 'noon' }, { role: 'tool', tool_call_id: calls[1].ids[0], content: 'sunny' }],
		}));
		assert.equal(got2.content, 'Grüße aus Zürich — 東京 ✓ 🎉 fertig', 'multibyte text split across writes reassembled exactly');
		const reqs = await sim.requests();
		assertAllAccepted(reqs);
		const b = reqs[1].body;
		assert.deepEqual(b.messages[1].tool_calls.map(c => [c.id, JSON.parse(c.function.arguments)]), [
			[idIn(b.messages[1].tool_calls, 'call_il_time'), { tz: 'Europe/Zürich' }], [idIn(b.messages[1].tool_calls, 'call_il_echo'), { message: 'ünï ✓ 東京' }], [idIn(b.messages[1].tool_calls, 'call_il_weather'), { city: 'Zürich 🎉' }],
		]);
		assert.equal(toolMsg(b, 'call_il_echo').content, 'Echo: ünï ✓ 東京');
	});

	test('tool injection: client tools first, then every MCP tool in OpenAI form; the mcp key is not forwarded', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		const r = completion(await client.chat.completions.create({ model: 'sim-model', messages: [{ role: 'user', content: 'inject' }], tools: [WEATHER] }));
		assert.equal(r.choices[0].message.content, 'sim: inject');
		const [q] = await sim.requests();
		const names = toolNames(q.body);
		assert.equal(names[0], 'get_weather', "the client's tool first");
		assert.deepEqual(q.body.tools[0], WEATHER, "the client's tool unchanged");
		assert.deepEqual(names.slice(1).sort(), mcpTools.map(t => t.function.name).sort(), 'every MCP tool after it');
		for (const t of q.body.tools.slice(1)) {
			assert.equal(t.type, 'function');
			assert.equal(t.function.parameters?.type, 'object', `${t.function.name}: parameters`);
		}
		const rq = q.body.tools.find(t => t.function.name === 'read_query');
		assert.deepEqual(rq.function.parameters, mcpTools.find(t => t.function.name === 'read_query').function.parameters);
	});

	test('tool injection: mcp.servers and X-MCPGW-Servers narrow, mcp.tools:false and n>1 offer none', { timeout: TEST_TIMEOUT }, async () => {
		const sqliteNames = ['append_insight', 'create_table', 'describe_table', 'list_tables', 'read_query', 'write_query'];
		const everythingNames = mcpTools.map(t => t.function.name).filter(n => !sqliteNames.includes(n)).sort();

		await sim.reset();
		await client.chat.completions.create({ model: 'sim-model', messages: USER, tools: [WEATHER], mcp: { servers: ['sqlite'] } });
		let [q] = await sim.requests();
		assert.equal(q.body.mcp, undefined, 'the mcp key is removed before forwarding');
		assert.equal(toolNames(q.body)[0], 'get_weather');
		assert.deepEqual(toolNames(q.body).slice(1).sort(), sqliteNames, 'mcp.servers: only the sqlite tools');

		await sim.reset();
		await client.chat.completions.create({ model: 'sim-model', messages: USER }, { headers: { 'X-MCPGW-Servers': 'everything' } });
		[q] = await sim.requests();
		assert.deepEqual(toolNames(q.body).sort(), everythingNames, 'X-MCPGW-Servers: only the everything tools');
		assert.equal(q.headers['x-mcpgw-servers'], undefined, 'the header is not forwarded upstream');

		await sim.reset();
		await client.chat.completions.create({ model: 'sim-model', messages: USER, mcp: { tools: false } });
		[q] = await sim.requests();
		assert.equal(q.body.mcp, undefined);
		assert.ok(!q.body.tools || q.body.tools.length === 0, `mcp.tools:false offers no tools: ${toolNames(q.body)}`);

		await sim.reset();
		await client.chat.completions.create({ model: 'sim-model', messages: USER, tools: [WEATHER], mcp: { tools: false } });
		[q] = await sim.requests();
		assert.deepEqual(toolNames(q.body), ['get_weather'], "mcp.tools:false keeps the client's tools");

		await sim.reset();
		await client.chat.completions.create({ model: 'sim-model', messages: USER, n: 2 });
		[q] = await sim.requests();
		assert.equal(q.body.n, 2);
		assert.ok(!q.body.tools || q.body.tools.length === 0, `n=2 offers no MCP tools: ${toolNames(q.body)}`);
	});

	test('the mcp object is checked like an OpenAI request: unknown keys, wrong types, servers not configured (body or X-MCPGW-Servers) -> 400 with param; the upstream is never asked', { timeout: TEST_TIMEOUT }, async () => {
		const bad = async (body, headers, { param, code, message }, tag) => {
			for (const stream of [false, true]) {
				const r = await chatFetch(gw, { model: 'sim-model', messages: USER, ...body, ...(stream ? { stream } : {}) }, { headers });
				const what = `${tag}${stream ? ' (stream)' : ''}`;
				assert.equal(r.status, 400, `${what}: ${r.text}`);
				assert.match(r.headers.get('content-type') ?? '', /application\/json/, `${what}: an error object, not a stream`);
				assert.deepEqual(Object.keys(r.json?.error ?? {}).sort(), ['code', 'message', 'param', 'type'], `${what}: ${r.text}`);
				assert.equal(r.json.error.type, 'invalid_request_error', what);
				assert.equal(r.json.error.param, param, `${what}: ${r.text}`);
				assert.equal(r.json.error.code, code, `${what}: ${r.text}`);
				assert.match(r.json.error.message, message, `${what}: ${r.text}`);
			}
		};
		const configured = /the configured servers are: sqlite, everything, off\./;
		await sim.reset();

		// the new user's cases: a server that is not configured at all, in the body and in the header
		await bad({ mcp: { servers: ['nosuch'] } }, {}, { param: 'mcp.servers', code: 'server_not_found', message: /Unknown MCP server 'nosuch' in "mcp": \{"servers": \[\.\.\.\]\}; the configured servers are/ }, 'servers [nosuch]');
		await bad({}, { 'X-MCPGW-Servers': 'nosuch' }, { param: 'X-MCPGW-Servers', code: 'server_not_found', message: /Unknown MCP server 'nosuch' in X-MCPGW-Servers/ }, 'header nosuch');
		await bad({}, { 'X-MCPGW-Servers': 'sqlite, nosuch,sqlit' }, { param: 'X-MCPGW-Servers', code: 'server_not_found', message: /^Unknown MCP servers 'nosuch', 'sqlit' \(did you mean 'sqlite'\?\) in X-MCPGW-Servers; the configured servers are: sqlite, everything, off\.$/ }, 'header with one good name');
		await bad({ mcp: { servers: ['sqlite', 'evrything'] } }, {}, { param: 'mcp.servers', code: 'server_not_found', message: /'evrything' \(did you mean 'everything'\?\)/ }, 'a misspelt server');
		await bad({ mcp: { servers: ['Sqlite'] } }, {}, { param: 'mcp.servers', code: 'server_not_found', message: configured }, 'names are case-sensitive');
		// a string, not a list; a typo of "tools"; other wrong shapes
		await bad({ mcp: { servers: 'sqlite' } }, {}, { param: 'mcp.servers', code: 'invalid_type', message: /must be an array of MCP server names.*got a string/ }, 'servers as a string');
		await bad({ mcp: { tool: false } }, {}, { param: 'mcp.tool', code: 'unknown_parameter', message: /Unrecognized parameter 'mcp\.tool' \(did you mean 'mcp\.tools'\?\)/ }, 'mcp.tool');
		await bad({ mcp: { server: ['sqlite'] } }, {}, { param: 'mcp.server', code: 'unknown_parameter', message: /did you mean 'mcp\.servers'/ }, 'mcp.server');
		await bad({ mcp: { servers: ['sqlite'], colour: 'red' } }, {}, { param: 'mcp.colour', code: 'unknown_parameter', message: /^Unrecognized parameter 'mcp\.colour'\. "mcp" takes "servers"/ }, 'a key far from any');
		await bad({ mcp: { tools: 'no' } }, {}, { param: 'mcp.tools', code: 'invalid_type', message: /must be a boolean.*got a string/ }, 'tools as a string');
		await bad({ mcp: { tools: 0 } }, {}, { param: 'mcp.tools', code: 'invalid_type', message: /got a number/ }, 'tools as 0');
		await bad({ mcp: { servers: [] } }, {}, { param: 'mcp.servers', code: 'empty_array', message: /names no server.*"tools": false/ }, 'servers []');
		await bad({ mcp: { servers: ['sqlite', 7] } }, {}, { param: 'mcp.servers', code: 'invalid_type', message: /item 1 is a number/ }, 'servers [sqlite, 7]');
		await bad({ mcp: { servers: [''] } }, {}, { param: 'mcp.servers', code: 'invalid_type', message: /item 0 is an empty string/ }, 'servers [""]');
		await bad({ mcp: { servers: ['sqlite,everything'] } }, {}, { param: 'mcp.servers', code: 'invalid_type', message: /comma/ }, 'two names in one');
		await bad({ mcp: 'sqlite' }, {}, { param: 'mcp', code: 'invalid_type', message: /'mcp' must be an object; got a string/ }, 'mcp as a string');
		await bad({ mcp: ['sqlite'] }, {}, { param: 'mcp', code: 'invalid_type', message: /got an array/ }, 'mcp as an array');
		await bad({}, { 'X-MCPGW-Servers': ' , ' }, { param: 'X-MCPGW-Servers', code: 'empty_array', message: /names no server/ }, 'a header of commas');
		// the body is checked even when the header narrows instead
		await bad({ mcp: { tool: false } }, { 'X-MCPGW-Servers': 'sqlite' }, { param: 'mcp.tool', code: 'unknown_parameter', message: /mcp\.tools/ }, 'a bad body with a good header');
		assert.equal((await sim.requests()).length, 0, 'no bad request went upstream');

		// through the real SDK: the same APIError a wrong OpenAI parameter gives
		let err = await expectAPIError(() => client.chat.completions.create({ model: 'sim-model', messages: USER, mcp: { servers: ['nosuch'] } }), 400);
		assert.equal(err.param, 'mcp.servers');
		assert.equal(err.code, 'server_not_found');
		assert.equal(err.type, 'invalid_request_error');
		assert.match(err.message, configured);
		err = await expectAPIError(() => client.chat.completions.create({ model: 'sim-model', messages: USER }, { headers: { 'X-MCPGW-Servers': 'nosuch' } }), 400);
		assert.equal(err.param, 'X-MCPGW-Servers');
		err = await expectAPIError(() => client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true, mcp: { tool: false } }), 400);
		assert.equal(err.param, 'mcp.tool');
		assert.equal((await sim.requests()).length, 0, 'the upstream was never asked');

		// what stays accepted: a configured but disabled server (no tools, as before), null for absent, tools: true
		await sim.reset();
		await client.chat.completions.create({ model: 'sim-model', messages: USER, mcp: { servers: ['off'] } });
		await client.chat.completions.create({ model: 'sim-model', messages: USER }, { headers: { 'X-MCPGW-Servers': 'off' } });
		await client.chat.completions.create({ model: 'sim-model', messages: USER, mcp: { servers: null, tools: null } });
		await client.chat.completions.create({ model: 'sim-model', messages: USER, mcp: { servers: ['sqlite', 'sqlite'], tools: true } });
		const qs = await sim.requests();
		assert.equal(qs.length, 4, 'each accepted request went upstream');
		assert.deepEqual(toolNames(qs[0].body), [], 'a disabled server offers no tools');
		assert.deepEqual(toolNames(qs[1].body), [], 'a disabled server offers no tools (header)');
		assert.equal(toolNames(qs[2].body).length, mcpTools.length, 'null: every MCP tool');
		assert.equal(toolNames(qs[3].body).length, 6, 'the sqlite tools once');
		for (const q of qs) assert.equal(q.body.mcp, undefined, 'the mcp key is not forwarded');
	});

	test('a client tool shadowing an MCP tool name stays the client\'s (offered once, call returned to the client)', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		const myEcho = { type: 'function', function: { name: 'echo', description: 'my own echo', parameters: { type: 'object', properties: { text: { type: 'string' } } } } };
		await sim.script([{ tool_calls: [{ id: 'call_shadow', name: 'echo', arguments: { text: 'mine' } }] }]);
		const r = completion(await client.chat.completions.create({ model: 'sim-model', messages: USER, tools: [myEcho] }));
		const [q] = await sim.requests();
		assert.equal(toolNames(q.body).filter(n => n === 'echo').length, 1, 'echo offered once');
		assert.deepEqual(q.body.tools[0], myEcho);
		assert.equal(r.choices[0].finish_reason, 'tool_calls');
		assertIds(r.choices[0].message.tool_calls, ['call_shadow']);
		assert.equal((await sim.requests()).length, 1, 'the gateway did not run it');
	});

	test('model: DEFAULT_MODEL when absent, MCPGW_MODEL_ALIASES maps an alias', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		const r1 = await chatFetch(gw, { messages: [{ role: 'user', content: 'no model' }] });
		assert.equal(r1.status, 200, r1.text);
		assert.equal(r1.json.choices[0].message.content, 'sim: no model');
		const r2 = completion(await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'alias' }] }));
		assert.equal(r2.choices[0].message.content, 'sim: alias');
		const r3 = completion(await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'named' }] }));
		assert.equal(r3.model, 'gpt-4o-mini');
		if (!PINNED_DEPLOYMENT) { // a deployment URL serves every model name with its one deployment
			const err = await expectAPIError(() => client.chat.completions.create({ model: 'no-such-model', messages: USER }), 404);
			assert.equal(err.code, providerCode(404, 'model_not_found'), "the upstream's 404 passed through");
		}
		const reqs = await sim.requests();
		assert.deepEqual(reqs.map(q => q.body.model), ['sim-model', 'sim-model', 'gpt-4o-mini', ...(PINNED_DEPLOYMENT ? [] : ['no-such-model'])]);
	});

	test('tool result mapping: isError -> "Tool error: ", structuredContent as JSON, long output truncated', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		const long = 'z'.repeat(5000);
		await sim.script([
			{
				tool_calls: [
					{ id: 'call_m_err', name: 'read_query', arguments: { query: 'DELETE FROM notes_ns' } },
					{ id: 'call_m_struct', name: 'get-structured-content', arguments: { location: 'Chicago' } },
					{ id: 'call_m_long', name: 'echo', arguments: { message: long } },
					{ id: 'call_m_badjson', name: 'read_query', arguments: '{"query": "SELECT 1"' },
					{ id: 'call_m_badargs', name: 'get-sum', arguments: { a: 'one', b: 2 } },
				],
			},
			{ content: 'mapped' },
		]);
		const r = completion(await client.chat.completions.create({ model: 'sim-model', messages: USER }));
		assert.equal(r.choices[0].message.content, 'mapped');
		const reqs = await sim.requests();
		assert.equal(reqs.length, 2);
		assertAllAccepted(reqs);
		const b = reqs[1].body;
		const err = toolMsg(b, 'call_m_err').content;
		assert.ok(err.startsWith('Tool error: '), `isError result: ${JSON.stringify(err)}`);
		assert.match(err, /read-only/);
		assert.deepEqual(JSON.parse(toolMsg(b, 'call_m_struct').content), { temperature: 36, conditions: 'Light rain / drizzle', humidity: 82 });
		const cut = toolMsg(b, 'call_m_long').content;
		assert.ok(cut.startsWith('Echo: zzz'), cut.slice(0, 40));
		assert.match(cut, /\[output truncated by mcpgw: [^\]]*\]$/);
		assert.ok(Buffer.byteLength(cut) <= 2048 + 120, `truncated output is ${Buffer.byteLength(cut)} bytes (MCPGW_MAX_TOOL_OUTPUT_BYTES=2048)`);
		assert.ok(Buffer.byteLength(cut) >= 1900, `truncated output is only ${Buffer.byteLength(cut)} bytes`);
		for (const id of ['call_m_badjson', 'call_m_badargs']) {
			const c = toolMsg(b, id).content;
			assert.ok(c.startsWith('Tool error: '), `${id}: ${JSON.stringify(c)}`);
		}
	});

	test('upstream 500: retried (Retry-After honoured), then passed through with its status and error object', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			{ error: { status: 500, message: 'boom one', retry_after_ms: 20 } },
			{ error: { status: 500, message: 'boom two', retry_after_ms: 20 } },
			{ error: { status: 500, message: 'boom three', type: 'server_error', code: 'sim_500' } },
			{ content: 'must not be used' },
		]);
		const err = await expectAPIError(() => client.chat.completions.create({ model: 'sim-model', messages: USER }), 500);
		assert.equal(err.error?.message, 'boom three', `the upstream's error object: ${JSON.stringify(err.error)}`);
		assert.equal(err.code, providerCode(500, 'sim_500'));
		assert.equal((await sim.requests()).length, 3, '1 + MCPGW_UPSTREAM_RETRIES attempts');
		assert.equal(await sim.queued(), 1);
		await assertStillServing(gw, sim, '500');

		// one 500 with Retry-After: 1 (seconds), then success: the client never sees the 500
		await sim.script([{ error: { status: 500, retry_after: 1 } }, { content: 'recovered' }]);
		const t0 = performance.now();
		const r = completion(await client.chat.completions.create({ model: 'sim-model', messages: USER }));
		const waited = performance.now() - t0;
		assert.equal(r.choices[0].message.content, 'recovered');
		assert.ok(waited >= 900, `Retry-After: 1 honoured (retried after ${Math.round(waited)} ms)`);
	});

	test('upstream 429: retried honouring retry-after-ms, then passed through as 429', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([{ error: { status: 429, retry_after_ms: 400 } }, { content: 'after the rate limit' }]);
		const t0 = performance.now();
		const r = completion(await client.chat.completions.create({ model: 'sim-model', messages: USER }));
		const waited = performance.now() - t0;
		assert.equal(r.choices[0].message.content, 'after the rate limit');
		assert.ok(waited >= 380, `retry-after-ms: 400 honoured (retried after ${Math.round(waited)} ms)`);
		assert.equal((await sim.requests()).length, 2);

		await sim.reset();
		await sim.script([0, 1, 2].map(() => ({ error: { status: 429, retry_after_ms: 10 } })));
		const err = await expectAPIError(() => client.chat.completions.create({ model: 'sim-model', messages: USER }), 429);
		assert.ok(err instanceof OpenAI.RateLimitError);
		assert.equal(err.code, providerCode(429, 'rate_limit_exceeded'));
		assert.equal((await sim.requests()).length, 3);
		// streaming requests fail before the stream starts with the same status
		await sim.reset();
		await sim.script([0, 1, 2].map(() => ({ error: { status: 429, retry_after_ms: 10 } })));
		await expectAPIError(() => client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true }), 429);
		await assertStillServing(gw, sim, '429');
	});

	test('upstream slower than MCPGW_UPSTREAM_TIMEOUT -> 504 upstream_timeout', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([{ delay_ms: 2500, content: 'too late' }, { delay_ms: 2500, content: 'too late' }, { delay_ms: 2500, content: 'too late' }]);
		const t0 = performance.now();
		const err = await expectAPIError(() => client.chat.completions.create({ model: 'sim-model', messages: USER }), 504);
		const took = performance.now() - t0;
		assert.equal(err.code, 'upstream_timeout');
		assert.match(err.message, /MCPGW_UPSTREAM_TIMEOUT/, 'the setting to raise is named');
		assert.ok(took >= 900, `timed out after ${Math.round(took)} ms, MCPGW_UPSTREAM_TIMEOUT is 1 s`);
		await assertStillServing(gw, sim, 'timeout');
	});

	test('upstream garbage -> 502 upstream_bad_response (streaming or not)', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([{ garbage: '<html>not json</html>' }]);
		const e1 = await expectAPIError(() => client.chat.completions.create({ model: 'sim-model', messages: USER }), 502);
		assert.equal(e1.code, 'upstream_bad_response');
		await sim.script([{ garbage: 'this is not json' }]);
		const e2 = await expectAPIError(async () => {
			for await (const c of await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true })) void c;
		}, 502);
		assert.equal(e2.code, 'upstream_bad_response');
		await assertStillServing(gw, sim, 'garbage');
	});

	test('upstream drops the connection before answering: retried transparently', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([{ drop: true }, { content: 'after the drop' }]);
		const r = completion(await client.chat.completions.create({ model: 'sim-model', messages: USER }));
		assert.equal(r.choices[0].message.content, 'after the drop');
		assert.equal((await sim.requests()).length, 2);
	});

	test('upstream stream breaks mid-way -> the SDK stream iteration throws; the gateway keeps serving', { timeout: TEST_TIMEOUT }, async () => {
		for (const [tag, turn] of [
			['broken', { content: 'one two three four five six seven', break_after_chunks: 3 }],
			['error event', { content: 'one two three four five six seven', stream_error: { message: 'upstream fell over', after_chunks: 3 } }],
		]) {
			await sim.reset();
			await sim.script([{ tool_calls: [{ id: `call_b_${tag.length}`, name: 'echo', arguments: { message: 'before' } }] }, turn]);
			const seen = [];
			let err, deltas = 0;
			try {
				const stream = await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true });
				for await (const c of stream) {
					const d = c.choices[0]?.delta ?? {};
					seen.push(d.content ?? '');
					// a reasoning profile's first chunks carry its reasoning field, not content
					if (d.content || d.reasoning_content || d.reasoning) deltas++;
				}
			} catch (e) { err = e; }
			assert.ok(err, `${tag}: the stream iteration did not throw (got ${JSON.stringify(seen.join(''))})`);
			assert.ok(err instanceof OpenAI.APIError, `${tag}: ${err?.constructor?.name}: ${err?.message}`);
			if (tag === 'error event') assert.match(err.message, /upstream fell over/);
			assert.ok(deltas > 0 && 'one two three four five six seven'.startsWith(seen.join('')),
				`${tag}: what came before the break reached the client: ${JSON.stringify(seen.join(''))}`);
			await assertStillServing(gw, sim, tag.replace(' ', '-'));
		}
	});

	test('upstream failure after a server-side MCP round of a stream -> an error event, the SDK stream throws', { timeout: TEST_TIMEOUT }, async () => {
		for (const [tag, failing, code] of [
			['500', [0, 1, 2].map(() => ({ error: { status: 500, message: 'round two failed', retry_after_ms: 10 } })), null],
			['garbage', [{ garbage: 'not json' }], 'upstream_bad_response'],
			['timeout', [{ delay_ms: 2000 }], 'upstream_timeout'],
		]) {
			await sim.reset();
			await sim.script([{ tool_calls: [{ id: `call_af_${tag}`, name: 'echo', arguments: { message: 'first' } }] }, ...failing]);
			const raw = await chatFetch(gw, { model: 'sim-model', messages: USER, stream: true });
			const { data, comments } = parseSSE(raw.text);
			assert.ok(comments.length > 0, `${tag}: the progress comments started the stream`);
			const errEvent = data.map(d => { try { return JSON.parse(d); } catch { return null; } }).find(o => o?.error);
			assert.ok(errEvent, `${tag}: expected a data: {"error": ...} event after the MCP round, the stream was: ${JSON.stringify(raw.text)}`);
			if (code) assert.equal(errEvent.error.code, code);
			else assert.equal(errEvent.error.message, 'round two failed');

			await sim.reset();
			await sim.script([{ tool_calls: [{ id: `call_af2_${tag}`, name: 'echo', arguments: { message: 'first' } }] }, ...failing]);
			let err, chunks = 0;
			try {
				for await (const c of await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true })) { void c; chunks++; }
			} catch (e) { err = e; }
			assert.ok(err instanceof OpenAI.APIError, `${tag}: the SDK stream ended without an error after ${chunks} chunks (${err?.message ?? 'no exception'})`);
			await assertStillServing(gw, sim, `after-${tag}`);
		}
	});

	test('concurrent streams are served at the same time, each with its own loop', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		const N = 6;
		const turns = [];
		for (let i = 0; i < N; i++) {
			turns.push({ match: `conc-${i}-`, tool_calls: [{ id: `call_c_${i}`, name: 'echo', arguments: { message: `m${i}` } }] });
			turns.push({ match: `Echo: m${i}"`, content: `answer ${i} a b c`, chunks: 4, chunk_delay_ms: 250 });
		}
		// a front end that starts its processes on demand (Apache mod_fcgid:
		// one request per process) gets them during an unmeasured burst first
		const warm = [];
		for (let i = 0; i < N; i++)
			warm.push({ match: `warm-${i}-`, content: `w${i}`, chunks: 4, chunk_delay_ms: 250 });
		await sim.script(warm);
		await Promise.all([...Array(N).keys()].map(async i =>
			collect(await client.chat.completions.create({ model: 'sim-model', stream: true, messages: [{ role: 'user', content: `warm-${i}-` }] }))));
		await sim.reset();
		await sim.script(turns);
		const t0 = performance.now();
		const got = await Promise.all([...Array(N).keys()].map(async i =>
			collect(await client.chat.completions.create({ model: 'sim-model', stream: true, messages: [{ role: 'user', content: `conc-${i}-` }] }))));
		const took = performance.now() - t0;
		got.forEach((g, i) => {
			assert.equal(g.content, `answer ${i} a b c`);
			assert.deepEqual(g.finish, ['stop']);
		});
		assert.equal(new Set(got.map(g => [...g.ids][0])).size, N, 'each stream has its own id');
		got.forEach(g => {
			assert.equal(g.ids.size, 1, 'one id for every chunk of a stream');
			// OpenAI's shape, 29 characters of [A-Za-z0-9] (172 random bits) from lib/randid
			assert.match([...g.ids][0], /^chatcmpl-[A-Za-z0-9]{29}$/);
		});
		// served at the same time, every stream has its first content before any
		// stream ends; served one after the other (each ~1 s of content), no
		// stream could start before the one before it ended. Ordering, not a
		// wall-clock bound: it holds however busy the machine is.
		const lastFirst = Math.max(...got.map(g => g.contentTimes[0]));
		const firstEnd = Math.min(...got.map(g => g.times[g.times.length - 1]));
		assert.ok(lastFirst < firstEnd,
			`streams did not overlap: the last first chunk came ${Math.round(lastFirst - t0)} ms in, ` +
			`the first stream ended ${Math.round(firstEnd - t0)} ms in (all took ${Math.round(took)} ms)`);
		assertAllAccepted(await sim.requests());
	});

	test('a client that goes away mid-stream stops the upstream stream; the gateway keeps serving', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([{ content: 'a b c d e f g h', chunks: 8, chunk_delay_ms: 250 }]);
		const ac = new AbortController();
		const res = await fetch(`${gw.v1}/chat/completions`, {
			method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' },
			body: JSON.stringify({ model: 'sim-model', stream: true, messages: [{ role: 'user', content: 'abort me' }] }),
		});
		assert.equal(res.status, 200);
		const reader = res.body.getReader();
		const first = await reader.read();
		assert.ok(!first.done);
		ac.abort();
		// the upstream stream would last ~2.5 s; the gateway notices at its next write
		let entry;
		for (let i = 0; i < 40; i++) {
			[entry] = await sim.requests();
			if (entry?.aborted || entry?.chunks_sent !== undefined) break;
			await new Promise(r => setTimeout(r, 100));
		}
		assert.equal(entry?.aborted, true, `the upstream request was not aborted: ${JSON.stringify(entry && { aborted: entry.aborted, chunks_sent: entry.chunks_sent })}`);
		assert.ok(entry.chunks_sent < 8, `upstream sent ${entry.chunks_sent} chunks`);
		await assertStillServing(gw, sim, 'abort');
	});

	test('plain HTTP errors: bad JSON 400, too large 413, GET 405, messages not an array 400; still serving after', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		let r = await chatFetch(gw, '{"model": "sim-model", "messages": [');
		assert.equal(r.status, 400, r.text);
		assert.equal(r.json?.error?.code, 'invalid_json');
		assert.equal(typeof r.json.error.message, 'string');

		r = await chatFetch(gw, { model: 'sim-model', messages: [{ role: 'user', content: 'x'.repeat(70000) }] });
		assert.equal(r.status, 413, r.text.slice(0, 300));
		assert.equal(r.json?.error?.code, 'request_too_large');

		r = await chatFetch(gw, undefined, { method: 'GET' });
		assert.equal(r.status, 405, r.text);
		assert.match(r.headers.get('allow') ?? '', /POST/);
		assert.equal(r.json?.error?.code, 'method_not_allowed');

		for (const messages of ['hello', { role: 'user', content: 'hi' }, 42]) {
			r = await chatFetch(gw, { model: 'sim-model', messages });
			assert.equal(r.status, 400, `messages=${JSON.stringify(messages)}: ${r.text}`);
			assert.equal(r.json?.error?.param, 'messages');
			assert.equal(r.json?.error?.type, 'invalid_request_error');
		}
		r = await chatFetch(gw, [{ role: 'user', content: 'an array body' }]);
		assert.equal(r.status, 400, r.text);

		assert.equal((await sim.requests()).length, 0, 'nothing went upstream');
		await assertStillServing(gw, sim, 'http-errors');
	});
});

// ---------------------------------------------------------------------------
// a second gateway: MCPGW_MAX_TOOL_ROUNDS=2, no retries, its upstream first a closed port, then a simulator there

describe('chat completions (rounds limit 2, upstream unreachable then back)', { timeout: 60000 }, () => {
	let gw, sim2, port, client;

	before(async () => {
		port = await freePort();
		// the settings the profile's provider needs, for the simulator that will listen on port
		const base = `http://127.0.0.1:${port}`;
		const penv = getProfile(SIM_PROFILE).gateway_env?.({ base, v1: `${base}/v1` }) ?? {};
		gw = await startGateway({
			upstream: penv.OPENAI_BASE_URL ?? `${base}/v1`,
			env: { ...penv, MCPGW_MAX_TOOL_ROUNDS: '2', MCPGW_UPSTREAM_RETRIES: '0', MCPGW_UPSTREAM_CONNECT_TIMEOUT: '2' },
			servers: home => ({ sqlite: defaultServers(home).sqlite }),
		});
		client = sdk(gw);
	});
	after(async () => {
		await gw?.stop();
		await sim2?.stop();
	});
	// the simulator on the port the gateway was configured with, started once
	const upstream = async () => (sim2 ??= await startSim(['--port', String(port), '--api-key', UPSTREAM_KEY]));

	test('upstream unreachable -> 502 upstream_unreachable naming the URL; served again once the upstream is up', { timeout: TEST_TIMEOUT }, async () => {
		const err = await expectAPIError(() => client.chat.completions.create({ model: 'sim-model', messages: USER }), 502);
		assert.equal(err.code, 'upstream_unreachable');
		assert.ok(err.message.includes(`127.0.0.1:${port}`), `the message names the URL: ${err.message}`);
		assert.ok(err.message.includes('OPENAI_BASE_URL'), `the message names the setting to check: ${err.message}`);
		const r = await chatFetch(gw, { messages: USER, stream: true });
		assert.equal(r.status, 502, 'streaming: the error before the stream starts');
		assert.equal(r.json?.error?.code, 'upstream_unreachable');
		const t = await fetch(`${gw.v1}/tools`);
		assert.equal(t.status, 200);
		const sim = await upstream();
		await assertStillServing(gw, sim, 'unreachable');
	});

	test('MCPGW_MAX_TOOL_ROUNDS=2, non-streaming: finish_reason "length", MCP calls removed, what the model said kept', { timeout: TEST_TIMEOUT }, async () => {
		const sim = await upstream();
		await sim.reset();
		const loop = n => ({ tool_calls: [{ id: `call_l_${n}`, name: 'list_tables', arguments: {} }], usage: usage(10, n) });
		await sim.script([loop(1), loop(2), { ...loop(3), content: 'Still looking at tables.' }, { content: 'never asked' }]);
		const r = completion(await client.chat.completions.create({ model: 'sim-model', messages: USER }));
		assert.equal(r.choices[0].finish_reason, 'length');
		assert.equal(r.choices[0].message.content, 'Still looking at tables.');
		assert.ok(!r.choices[0].message.tool_calls?.length, `no MCP calls in the message: ${JSON.stringify(r.choices[0].message.tool_calls)}`);
		assertUsage(r.usage, usage(30, 6));
		const reqs = await sim.requests();
		assert.equal(reqs.length, 3, 'two tool rounds run, the third answer ends the loop');
		assertAllAccepted(reqs);
		assert.equal(toolMsgs(reqs[2].body).length, 2);
		assert.equal(await sim.queued(), 1);
	});

	test('MCPGW_MAX_TOOL_ROUNDS=2, streaming: finish_reason "length" once, no tool call deltas', { timeout: TEST_TIMEOUT }, async () => {
		const sim = await upstream();
		await sim.reset();
		const loop = n => ({ tool_calls: [{ id: `call_ls_${n}`, name: 'list_tables', arguments: {} }] });
		await sim.script([loop(1), loop(2), { ...loop(3), content: 'Out of rounds.' }]);
		const got = await collect(await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true }));
		assert.deepEqual(got.finish, ['length']);
		assert.deepEqual(got.toolDeltas, []);
		assert.equal(got.content, 'Out of rounds.');
		assert.equal(got.ids.size, 1);
		assert.equal((await sim.requests()).length, 3);
	});
});
