// upstream_conventions.test.mjs: provider conventions of requests (Azure OpenAI's key header, api-version and
// deployment paths; a base URL's query string and credentials; stream_options.include_usage; max_tokens beside
// max_completion_tokens) and what the upstream tells the client (its request id, Retry-After on a final 429/503,
// never its x-ratelimit-* headers; retries bounded), with the real `openai` npm SDK through the real gateway to
// the upstream simulator (tests/upstream-sim/sim.mjs).
//
//   node --test tests/blackbox/upstream_conventions.test.mjs     (MCPGW_BB_KEEP=1 keeps the gateways' temp homes)
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startSim, startGateway, SQLITE_SERVER, UPSTREAM_KEY } from './gateway.mjs';

const TEST_TIMEOUT = 30000;
const USER = [{ role: 'user', content: 'hello' }];
const sqliteOnly = home => ({ sqlite: { command: SQLITE_SERVER, args: ['--db-path', path.join(home, 't.db')] } });
const sdk = (gw, opts = {}) => new OpenAI({ apiKey: 'sk-client', baseURL: gw.v1, maxRetries: 0, timeout: 20000, ...opts });

/** every /v1 (and /openai) request the simulator logged since its reset */
const allRequests = sim => sim.requests(0, null);

/** an APIError with that status thrown by fn */
async function expectAPIError(fn, status) {
	let err;
	try { await fn(); } catch (e) { err = e; }
	assert.ok(err instanceof OpenAI.APIError, `expected an OpenAI.APIError ${status}, got ${err?.constructor?.name}: ${err?.message}`);
	assert.equal(err.status, status, `status of ${err.message}`);
	return err;
}

/** the gateway's own logs (broker, web server, responders) in full */
function allLogs(gw) {
	let s = '';
	for (const f of fs.readdirSync(gw.state)) if (f.endsWith('.log')) s += fs.readFileSync(path.join(gw.state, f), 'utf8');
	return s;
}

describe('Azure OpenAI: api-key header, api-version, deployment paths', { timeout: 120000 }, () => {
	let sim, gw, client;

	before(async () => {
		sim = await startSim(['--any-model']);
		// the resource's root as the base URL (https://RES.openai.azure.com is detected; 127.0.0.1 is told)
		gw = await startGateway({
			upstream: sim.base,
			env: { MCPGW_UPSTREAM_DIALECT: 'azure', OPENAI_API_KEY: 'az-key-1' },
			servers: sqliteOnly,
		});
		client = sdk(gw);
	});
	after(async () => {
		await gw?.stop();
		await sim?.stop();
	});

	test('chat completion: /openai/deployments/MODEL/chat/completions?api-version=..., api-key, the request id back', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([{ content: 'from azure', headers: { 'x-request-id': 'req_az_plain' } }]);
		const { data, response } = await client.chat.completions.create({ model: 'gpt-4o', messages: USER }).withResponse();
		assert.equal(data.choices[0].message.content, 'from azure');
		assert.equal(response.headers.get('x-request-id'), 'req_az_plain');
		assert.equal(data._request_id, 'req_az_plain', "the SDK's _request_id");
		const [r] = await allRequests(sim);
		assert.equal(r.path, '/openai/deployments/gpt-4o/chat/completions');
		assert.equal(r.query, '?api-version=2024-10-21');
		assert.equal(r.headers['api-key'], 'az-key-1');
		assert.equal(r.headers.authorization, undefined, 'no Authorization header');
	});

	test('streamed: the same path; usage asked upstream but no usage chunk for a client that did not ask', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([{ content: 'streamed from azure', headers: { 'x-request-id': 'req_az_stream' } }]);
		const { data: stream, response } = await client.chat.completions
			.create({ model: 'gpt-4o', messages: USER, stream: true }).withResponse();
		assert.equal(response.headers.get('x-request-id'), 'req_az_stream');
		let text = '';
		const chunks = [];
		for await (const c of stream) {
			chunks.push(c);
			text += c.choices[0]?.delta?.content ?? '';
		}
		assert.equal(text, 'streamed from azure');
		assert.ok(chunks.every(c => c.choices.length === 1), 'no usage chunk (choices: [])');
		assert.ok(chunks.every(c => c.usage === undefined), 'no usage field');
		const [r] = await allRequests(sim);
		assert.equal(r.path, '/openai/deployments/gpt-4o/chat/completions');
		assert.deepEqual(r.body.stream_options, { include_usage: true }, 'the gateway asks for usage');
	});

	test('embeddings and models: /openai/deployments/MODEL/embeddings, /openai/models, api-version on both', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		const { data, response } = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }).withResponse();
		assert.equal(data.data.length, 1);
		assert.match(response.headers.get('x-request-id') ?? '', /^req_[0-9a-f]{32}$/, "the simulator's request id");
		const models = await fetch(`${gw.v1}/models`);
		assert.equal(models.status, 200);
		const reqs = await allRequests(sim);
		const emb = reqs.find(r => r.path.endsWith('/embeddings'));
		assert.equal(emb.path, '/openai/deployments/text-embedding-3-small/embeddings');
		assert.equal(emb.query, '?api-version=2024-10-21');
		assert.equal(emb.headers['api-key'], 'az-key-1');
		const list = reqs.find(r => r.method === 'GET');
		assert.equal(list.path, '/openai/models');
		assert.equal(list.query, '?api-version=2024-10-21');
	});
});

describe('OpenAI-shaped upstream: base URL query and credentials, Retry-After, request ids, retries bounded', { timeout: 180000 }, () => {
	let sim, gw, client;

	before(async () => {
		sim = await startSim();
		const u = new URL(sim.v1);
		gw = await startGateway({
			upstream: `http://me:pw-SECRET@${u.host}/v1?tenant=t-SECRET`,
			env: { MCPGW_UPSTREAM_RETRY_MAX_WAIT: '1', MCPGW_UPSTREAM_TIMEOUT: '5' },
			servers: sqliteOnly,
		});
		client = sdk(gw);
	});
	after(async () => {
		await gw?.stop();
		await sim?.stop();
	});

	test("the base URL's query string is kept; its credentials reach neither the client's error nor a log", { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([{ content: 'ok' }, ...[0, 1, 2].map(() => ({ error: { status: 502, body: '<html>bad gateway</html>' } }))]);
		await client.chat.completions.create({ model: 'sim-model', messages: USER });
		const err = await expectAPIError(() => client.chat.completions.create({ model: 'sim-model', messages: USER }), 502);
		assert.doesNotMatch(JSON.stringify(err.error), /SECRET/, `the error: ${JSON.stringify(err.error)}`);
		assert.match(err.message, /tenant=\*\*\*/, 'the URL is named, its query value masked');
		const reqs = await allRequests(sim);
		assert.equal(reqs[0].path, '/v1/chat/completions');
		assert.equal(reqs[0].query, '?tenant=t-SECRET');
		assert.equal(reqs[0].headers.authorization, `Bearer ${UPSTREAM_KEY}`, 'the key as the bearer token');
		assert.doesNotMatch(allLogs(gw), /SECRET/, 'no log line holds the password or the query value');
	});

	test('a 429 asking for longer than MCPGW_UPSTREAM_RETRY_MAX_WAIT: not retried, Retry-After and the request id reach the client', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([0, 1, 2].map(i => ({ error: { status: 429, retry_after: 30, headers: { 'x-request-id': `req_rl_${i}` } } })));
		const err = await expectAPIError(() => client.chat.completions.create({ model: 'sim-model', messages: USER }), 429);
		assert.ok(err instanceof OpenAI.RateLimitError);
		assert.equal(err.headers.get('retry-after'), '30');
		assert.equal(err.headers.get('x-request-id'), 'req_rl_0');
		assert.equal((await allRequests(sim)).length, 1, 'one upstream call: the wait is the client\'s');
		// streamed: the same before the stream starts
		const serr = await expectAPIError(() => client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true }), 429);
		assert.equal(serr.headers.get('retry-after'), '30');
		assert.equal(serr.headers.get('x-request-id'), 'req_rl_1');
	});

	test('a final 503 after the retries carries its Retry-After; x-ratelimit-* never reaches the client', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			...[0, 1, 2].map(() => ({ error: { status: 503, retry_after_ms: 30 } })),
			{ content: 'fine', headers: { 'x-ratelimit-remaining-requests': '41', 'x-ratelimit-limit-tokens': '9000' } },
		]);
		const err = await expectAPIError(() => client.chat.completions.create({ model: 'sim-model', messages: USER }), 503);
		assert.equal(err.headers.get('retry-after-ms'), '30');
		assert.equal(err.headers.get('retry-after'), '1');
		assert.equal((await allRequests(sim)).length, 3, '1 + MCPGW_UPSTREAM_RETRIES attempts');
		const { response } = await client.chat.completions.create({ model: 'sim-model', messages: USER }).withResponse();
		assert.equal(response.headers.get('x-ratelimit-remaining-requests'), null);
		assert.equal(response.headers.get('x-ratelimit-limit-tokens'), null);
		assert.match(response.headers.get('x-request-id') ?? '', /^req_/);
		const ok = await fetch(`${gw.v1}/tools`);
		assert.equal(ok.headers.get('x-request-id'), null, 'an answer that asked no upstream carries no upstream id');
	});

	test("an SDK's own retries are not multiplied: 5 upstream calls, not 9, for maxRetries 2", { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script(Array.from({ length: 9 }, () => ({ error: { status: 429, retry_after_ms: 20 } })));
		const retrying = sdk(gw, { maxRetries: 2 });
		await expectAPIError(() => retrying.chat.completions.create({ model: 'sim-model', messages: USER }), 429);
		const reqs = await allRequests(sim);
		assert.equal(reqs.length, 5, 'the first SDK attempt retried by the gateway (3), each SDK retry once (1 + 1)');
		assert.equal(await sim.queued(), 4);
	});

	test('embeddings: a final 429 passes its Retry-After', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([{ endpoint: 'embeddings', error: { status: 429, retry_after: 9 } }]);
		const err = await expectAPIError(() => client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }), 429);
		assert.equal(err.headers.get('retry-after'), '9');
		assert.match(err.headers.get('x-request-id') ?? '', /^req_/);
		assert.equal((await allRequests(sim)).length, 1);
	});

	test('tool rounds: a non-streamed answer carries the last round\'s request id, a stream the first\'s', { timeout: TEST_TIMEOUT }, async () => {
		const rounds = () => [
			{ tool_calls: [{ name: 'read_query', arguments: { query: 'SELECT 1 AS one' } }], headers: { 'x-request-id': 'req_round_1' } },
			{ content: 'one', headers: { 'x-request-id': 'req_round_2' } },
		];
		await sim.reset();
		await sim.script(rounds());
		const plain = await client.chat.completions.create({ model: 'sim-model', messages: USER }).withResponse();
		assert.equal(plain.data.choices[0].message.content, 'one');
		assert.equal(plain.response.headers.get('x-request-id'), 'req_round_2');
		await sim.reset();
		await sim.script(rounds());
		const { data: stream, response } = await client.chat.completions
			.create({ model: 'sim-model', messages: USER, stream: true, stream_options: { include_usage: true } }).withResponse();
		const chunks = [];
		for await (const c of stream) chunks.push(c);
		assert.equal(response.headers.get('x-request-id'), 'req_round_1');
		const usageChunks = chunks.filter(c => c.choices.length === 0);
		assert.equal(usageChunks.length, 1, 'the client asked for usage: one usage chunk');
		const reqs = await allRequests(sim);
		assert.equal(reqs.length, 2);
		assert.ok(reqs.every(r => r.body.stream_options?.include_usage === true));
		const u = usageChunks[0].usage;
		assert.ok(u.prompt_tokens > 0 && u.total_tokens === u.prompt_tokens + u.completion_tokens, JSON.stringify(u));
	});

	test('max_tokens and max_completion_tokens go upstream as the client sent them', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await client.chat.completions.create({ model: 'sim-model', messages: USER, max_tokens: 7 });
		await client.chat.completions.create({ model: 'sim-model', messages: USER, max_completion_tokens: 9 });
		const [a, b] = await allRequests(sim);
		assert.equal(a.body.max_tokens, 7);
		assert.equal(a.body.max_completion_tokens, undefined);
		assert.equal(b.body.max_completion_tokens, 9);
		assert.equal(b.body.max_tokens, undefined);
	});

	// last: the gateway's worker that met the rejection stops asking for stream_options
	test('an upstream that rejects stream_options: asked again without it, the stream still works', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			{ error: { status: 400, message: "Unknown parameter: 'stream_options'.", param: 'stream_options', code: 'unknown_parameter' } },
			{ content: 'no usage asked' },
		]);
		const stream = await client.chat.completions.create({ model: 'sim-model', messages: USER, stream: true });
		let text = '';
		for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
		assert.equal(text, 'no usage asked');
		const [first, second] = await allRequests(sim);
		assert.equal(first.body.stream_options?.include_usage, true);
		assert.equal(second.body.stream_options, undefined, 'sent again as the client sent it');
	});
});

describe('a base URL that is not the API base (no /v1): the gateway says so, not a 404 of the client\'s URL', { timeout: 120000 }, () => {
	let sim, gw, client;

	before(async () => {
		sim = await startSim();
		gw = await startGateway({ upstream: sim.base, servers: sqliteOnly }); // http://127.0.0.1:PORT, its /v1 left out
		client = sdk(gw);
	});
	after(async () => {
		await gw?.stop();
		await sim?.stop();
	});

	test('chat, streamed and not: 502 upstream_not_found naming the URL, asking about OPENAI_BASE_URL and /v1, quoting the upstream; the log too', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		for (const stream of [false, true]) {
			const err = await expectAPIError(() => client.chat.completions.create({ model: 'sim-model', messages: USER, stream }), 502);
			assert.equal(err.code, 'upstream_not_found', JSON.stringify(err.error));
			assert.match(err.message, new RegExp(`${sim.base}/chat/completions answered HTTP 404`));
			assert.match(err.message, /OPENAI_BASE_URL/);
			assert.match(err.message, /ending in \/v1/);
			assert.match(err.message, /it said: Invalid URL \(POST \/chat\/completions\)/);
		}
		assert.match(allLogs(gw), /answered HTTP 404 \(is OPENAI_BASE_URL/, 'the log line has the hint');
	});

	test('a 404 about the model still passes through as the client\'s 404 (model_not_found)', { timeout: TEST_TIMEOUT }, async () => {
		const good = await startGateway({ upstream: sim.v1, servers: sqliteOnly });
		try {
			const err = await expectAPIError(() => sdk(good).chat.completions.create({ model: 'no-such-model', messages: USER }), 404);
			assert.equal(err.code, 'model_not_found');
		} finally {
			await good.stop();
		}
	});
});
