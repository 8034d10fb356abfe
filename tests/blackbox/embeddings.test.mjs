// embeddings.test.mjs: POST /v1/embeddings with the real `openai` npm SDK through the real gateway (mcpgwctl: lighttpd +
// embeddings.fcgi): the built-in model, and a model forwarded to the OpenAI upstream simulator (tests/upstream-sim/sim.mjs).
//
//   node --test tests/blackbox/embeddings.test.mjs     (MCPGW_BB_KEEP=1 keeps the gateway's temp home)
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startSim, startGateway, SQLITE_SERVER } from './gateway.mjs';

const LOCAL = 'mcpgw-embedding-local';
const SIM_KEY = 'sk-embed-test';
const TEST_TIMEOUT = 30000;

const cos = (a, b) => {
	let ab = 0, aa = 0, bb = 0;
	a.forEach((x, i) => { ab += x * b[i]; aa += x * x; bb += b[i] * b[i]; });
	return ab / Math.sqrt(aa * bb);
};

/** one raw POST /v1/embeddings, as curl would send it */
async function embFetch(gw, body) {
	const r = await fetch(`${gw.v1}/embeddings`, {
		method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
	});
	return { status: r.status, json: await r.json() };
}

describe('embeddings through the gateway', () => {
	let sim, gw, client;

	before(async () => {
		sim = await startSim(['--api-key', SIM_KEY]);
		// the chat upstream is a closed port: embeddings must use EMBEDDING_BASE_URL / EMBEDDING_API_KEY
		gw = await startGateway({
			upstream: 'http://127.0.0.1:9/v1',
			env: { EMBEDDING_BASE_URL: sim.v1, EMBEDDING_API_KEY: SIM_KEY, MCPGW_MODEL_ALIASES: `emb=${LOCAL}` },
			servers: home => ({ sqlite: { command: SQLITE_SERVER, args: ['--db-path', `${home}/t.db`] } }),
		});
		client = new OpenAI({ apiKey: 'sk-client-not-for-upstream', baseURL: gw.v1, maxRetries: 0, timeout: 20000 });
	});

	after(async () => {
		await gw?.stop();
		await sim?.stop();
	});

	test('built-in model: SDK default (base64, decoded by the SDK) equals curl-style float, exactly', { timeout: TEST_TIMEOUT }, async () => {
		const input = ['数据库查询', 'How do I query the database?', 'x'];
		const viaSdk = await client.embeddings.create({ model: LOCAL, input });
		const raw = await embFetch(gw, { model: LOCAL, input, encoding_format: 'float' });
		assert.equal(raw.status, 200);
		assert.equal(viaSdk.object, 'list');
		assert.equal(viaSdk.model, LOCAL);
		assert.equal(viaSdk.data.length, 3);
		assert.deepEqual(viaSdk.usage, raw.json.usage);
		for (let i = 0; i < 3; i++) {
			const a = viaSdk.data[i].embedding, b = raw.json.data[i].embedding;
			assert.equal(viaSdk.data[i].index, i);
			assert.equal(a.length, 1536);
			assert.equal(b.length, 1536);
			// the float text has 9 significant digits: read back as float32 it is the base64 value, bit for bit
			assert.deepEqual(a, b.map(Math.fround));
			assert.ok(Math.abs(a.reduce((s, x) => s + x * x, 0) - 1) < 1e-5);
		}
		// the SDK with encoding_format float gets the numbers as sent
		const asFloat = await client.embeddings.create({ model: LOCAL, input, encoding_format: 'float' });
		assert.deepEqual(asFloat.data.map(d => d.embedding), raw.json.data.map(d => d.embedding));
	});

	test('built-in model: meaningful similarity, dimensions, token ids, an alias', { timeout: TEST_TIMEOUT }, async () => {
		const zh = await client.embeddings.create({ model: LOCAL, input: ['数据库查询', '查询数据库中的表', '今天天气很好'] });
		const [a, b, c] = zh.data.map(d => d.embedding);
		assert.ok(cos(a, b) > 0.5 && cos(a, c) < 0.2, `near ${cos(a, b)}, far ${cos(a, c)}`);
		const small = await client.embeddings.create({ model: LOCAL, input: 'short', dimensions: 64 });
		assert.equal(small.data[0].embedding.length, 64);
		const ids = await client.embeddings.create({ model: LOCAL, input: [[1, 2, 3], [1, 2, 4]] });
		assert.equal(ids.usage.prompt_tokens, 6);
		const viaAlias = await client.embeddings.create({ model: 'emb', input: '数据库查询' });
		assert.deepEqual(viaAlias.data[0].embedding, a);
	});

	test('built-in model: errors reach the SDK as its error classes', { timeout: TEST_TIMEOUT }, async () => {
		await assert.rejects(client.embeddings.create({ model: LOCAL, input: '' }), err => {
			assert.ok(err instanceof OpenAI.BadRequestError);
			assert.equal(err.status, 400);
			assert.match(err.message, /'\$\.input' is invalid/);
			return true;
		});
		await assert.rejects(client.embeddings.create({ model: LOCAL, input: 'x', dimensions: 4096 }), err => {
			assert.ok(err instanceof OpenAI.BadRequestError);
			assert.equal(err.param, 'dimensions');
			return true;
		});
	});

	test('an upstream model through the simulator: the SDK gets what the upstream itself would give', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		const input = ['alpha', 'beta'];
		const viaGw = await client.embeddings.create({ model: 'text-embedding-3-small', input, dimensions: 32 });
		const direct = await new OpenAI({ apiKey: SIM_KEY, baseURL: sim.v1, maxRetries: 0 })
			.embeddings.create({ model: 'text-embedding-3-small', input, dimensions: 32 });
		assert.equal(viaGw.model, 'text-embedding-3-small');
		assert.deepEqual(viaGw.data, direct.data);
		assert.deepEqual(viaGw.usage, direct.usage);
		assert.equal(viaGw.data[0].embedding.length, 32);
		// the gateway forwarded the SDK's body unchanged (base64 asked for), with the embeddings key
		const [fwd] = await sim.requests(0, '/v1/embeddings');
		assert.deepEqual(fwd.body, { model: 'text-embedding-3-small', input, dimensions: 32, encoding_format: 'base64' });
		assert.equal(fwd.headers.authorization, `Bearer ${SIM_KEY}`);
		// an upstream error passes through to the SDK's error class
		await sim.script([{ endpoint: 'embeddings', error: { status: 400, message: 'upstream says no', param: 'input' } }]);
		await assert.rejects(client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }), err => {
			assert.ok(err instanceof OpenAI.BadRequestError);
			assert.equal(err.message, '400 upstream says no');
			return true;
		});
	});
});
