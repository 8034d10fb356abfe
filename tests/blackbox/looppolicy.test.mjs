// looppolicy.test.mjs: the tool loop does what the client asked (tool_choice, parallel_tool_calls) and MCP results
// reach the model as the server wrote them (images to a model that takes them, text to one that cannot), and a
// long tool call keeps the stream alive: the real `openai` SDK -> the real gateway (sqlite + server-everything)
// -> the upstream simulator, whose turns stand in for a model that obeys tool_choice (`match` on the request).
//
//   node --test tests/blackbox/looppolicy.test.mjs
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';
import { startSim, startGateway, FRONTEND } from './gateway.mjs';

const TEST_TIMEOUT = 30000;
const WEATHER = {
	type: 'function',
	function: {
		name: 'get_weather', description: 'the weather in a city',
		parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
	},
};
const FORCED_WRITE = { type: 'function', function: { name: 'write_query' } };
// a model obeying tool_choice: while the request forces a tool it calls it; asked with "auto" it answers
const whenForced = (match, turn, times = 3) => Array.from({ length: times }, () => ({ match, ...turn }));
const FORCED_FN = '"tool_choice":{"type":"function"';

const sdk = gw => new OpenAI({ apiKey: 'sk-client', baseURL: gw.v1, maxRetries: 0, timeout: 20000 });

/** POST /v1/tools: run one MCP tool directly */
async function runTool(gw, tool, args) {
	const r = await fetch(`${gw.v1}/tools`, {
		method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tool, arguments: args }),
	});
	const j = await r.json();
	assert.equal(r.status, 200, `POST /v1/tools ${tool}: ${JSON.stringify(j)}`);
	return j;
}

/** the rows of a SELECT through the sqlite server's read_query (its text is the JSON rows) */
async function rows(gw, sql) {
	const j = await runTool(gw, 'read_query', { query: sql });
	const text = j.content?.find(c => c.type === 'text')?.text;
	try { return JSON.parse(text); } catch { return assert.fail(`read_query answered ${JSON.stringify(j).slice(0, 300)}`); }
}

/** a raw streamed chat completion: its data payloads and comment lines, in order */
async function rawStream(gw, body) {
	const r = await fetch(`${gw.v1}/chat/completions`, {
		method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }),
	});
	const text = await r.text();
	const events = [];
	for (const block of text.split(/\n\n/)) {
		for (const line of block.split('\n')) {
			if (line.startsWith(':')) events.push({ comment: line.slice(1).trim() });
			else if (line.startsWith('data: ')) events.push({ data: line.slice(6) });
		}
	}
	return { status: r.status, text, events };
}

/** a raw streamed chat completion read as it arrives: each data payload and comment line with its arrival time (ms) */
async function timedStream(gw, body) {
	const r = await fetch(`${gw.v1}/chat/completions`, {
		method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }),
	});
	const events = [];
	const t0 = performance.now();
	let rest = '';
	const dec = new TextDecoder();
	for await (const bytes of r.body) {
		rest += dec.decode(bytes, { stream: true });
		let i;
		while ((i = rest.indexOf('\n\n')) >= 0) {
			const block = rest.slice(0, i);
			rest = rest.slice(i + 2);
			for (const line of block.split('\n')) {
				const at = performance.now() - t0;
				if (line.startsWith(':')) events.push({ comment: line.slice(1).trim(), at });
				else if (line.startsWith('data: ')) events.push({ data: line.slice(6), at });
			}
		}
	}
	return { status: r.status, events };
}

// DeepSeek's answer to an image_url part (https://github.com/ChatLunaLab/chatluna/issues/867)
const TEXT_ONLY_400 = {
	status: 400, type: 'invalid_request_error', code: 'invalid_request_error',
	message: 'Failed to deserialize the JSON body into the target type: messages[3]: unknown variant `image_url`, expected `text` at line 1 column 1234',
};
const imageParts = body => body.messages.flatMap(m => Array.isArray(m.content) ? m.content.filter(p => p.type === 'image_url') : []);

/** an SDK stream folded: content, finish reasons, tool-call deltas */
async function collect(stream) {
	const out = { content: '', finish: [], toolDeltas: [] };
	for await (const c of stream) {
		for (const ch of c.choices ?? []) {
			if (typeof ch.delta?.content === 'string') out.content += ch.delta.content;
			if (ch.delta?.tool_calls) out.toolDeltas.push(...ch.delta.tool_calls);
			if (ch.finish_reason) out.finish.push(ch.finish_reason);
		}
	}
	return out;
}

describe('tool loop policy (sqlite + everything)', { timeout: 180000 }, () => {
	let sim, gw, client;
	let table = 0;

	/** a new table for one test: its name */
	async function newTable() {
		const name = `lp_${++table}`;
		await runTool(gw, 'create_table', { query: `CREATE TABLE ${name}(id INTEGER PRIMARY KEY, v TEXT)` });
		return name;
	}

	before(async () => {
		sim = await startSim(['--any-model']);
		gw = await startGateway({ upstream: sim.v1, env: { MCPGW_STREAM_KEEPALIVE: '0.2' } });
		client = sdk(gw);
	});
	after(async () => {
		await gw?.stop();
		await sim?.stop();
	});

	for (const stream of [false, true]) {
		test(`tool_choice forcing the side-effecting write_query: it runs once, the client gets the model's answer, "stop" (${stream ? 'streamed' : 'not streamed'})`, { timeout: TEST_TIMEOUT }, async () => {
			const t = await newTable();
			await sim.reset();
			await sim.script([
				...whenForced(FORCED_FN, { tool_calls: [{ name: 'write_query', arguments: { query: `INSERT INTO ${t}(v) VALUES ('once')` } }] }),
				{ content: 'Inserted one row.' },
			]);
			const req = { model: 'sim-model', messages: [{ role: 'user', content: 'add a row' }], tool_choice: FORCED_WRITE };
			let content, finish;
			if (stream) {
				const out = await collect(await client.chat.completions.create({ ...req, stream: true }));
				content = out.content;
				finish = out.finish;
				assert.equal(out.toolDeltas.length, 0, 'no tool call deltas for the client');
			} else {
				const r = await client.chat.completions.create(req);
				content = r.choices[0].message.content;
				finish = [r.choices[0].finish_reason];
			}
			assert.equal(content, 'Inserted one row.');
			assert.deepEqual(finish, ['stop']);
			assert.deepEqual(await rows(gw, `SELECT v FROM ${t}`), [{ v: 'once' }], 'write_query ran exactly once');
			const reqs = await sim.requests();
			assert.equal(reqs.length, 2, 'two upstream rounds');
			assert.deepEqual(reqs[0].body.tool_choice, FORCED_WRITE, 'the first round as the client asked');
			assert.equal(reqs[1].body.tool_choice, 'auto', 'later rounds let the model answer');
		});
	}

	test('tool_choice "required": the first round only; the model answers after the tool ran once', { timeout: TEST_TIMEOUT }, async () => {
		const t = await newTable();
		await sim.reset();
		await sim.script([
			...whenForced('"tool_choice":"required"', { tool_calls: [{ name: 'write_query', arguments: { query: `INSERT INTO ${t}(v) VALUES ('req')` } }] }),
			{ content: 'Done.' },
		]);
		const r = await client.chat.completions.create({ model: 'sim-model', messages: [{ role: 'user', content: 'go' }], tool_choice: 'required' });
		assert.equal(r.choices[0].message.content, 'Done.');
		assert.equal(r.choices[0].finish_reason, 'stop');
		assert.deepEqual(await rows(gw, `SELECT v FROM ${t}`), [{ v: 'req' }]);
		const reqs = await sim.requests();
		assert.deepEqual(reqs.map(q => q.body.tool_choice), ['required', 'auto']);
	});

	test('tool_choice forcing a client tool: the client gets its call ("tool_calls"); with its result back, the answer', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			...whenForced(FORCED_FN, { tool_calls: [{ id: 'call_w1', name: 'get_weather', arguments: { city: 'Oslo' } }] }),
			{ content: 'Rainy in Oslo.' },
		]);
		const forced = { type: 'function', function: { name: 'get_weather' } };
		const messages = [{ role: 'user', content: 'weather?' }];
		const r1 = await client.chat.completions.create({ model: 'sim-model', messages, tools: [WEATHER], tool_choice: forced });
		assert.equal(r1.choices[0].finish_reason, 'tool_calls');
		assert.deepEqual(r1.choices[0].message.tool_calls.map(c => c.function.name), ['get_weather']);
		// the client runs its tool and comes back (as OpenAI's Agents SDK does, with tool_choice reset)
		messages.push(r1.choices[0].message, { role: 'tool', tool_call_id: 'call_w1', content: 'rain' });
		const r2 = await client.chat.completions.create({ model: 'sim-model', messages, tools: [WEATHER] });
		assert.equal(r2.choices[0].message.content, 'Rainy in Oslo.');
		assert.equal(r2.choices[0].finish_reason, 'stop');
		assert.equal((await sim.requests()).length, 2);
	});

	test('tool_choice "none": an upstream that calls an MCP tool anyway gets nothing run; the client gets the text, "stop"', { timeout: TEST_TIMEOUT }, async () => {
		const t = await newTable();
		await sim.reset();
		await sim.script([
			{ match: '"tool_choice":"none"', content: 'Without tools.', tool_calls: [{ name: 'write_query', arguments: { query: `INSERT INTO ${t}(v) VALUES ('never')` } }] },
		]);
		for (const stream of [false, true]) {
			if (stream) await sim.append([{ match: '"tool_choice":"none"', content: 'Without tools.', tool_calls: [{ name: 'write_query', arguments: { query: `INSERT INTO ${t}(v) VALUES ('never')` } }] }]);
			const req = { model: 'sim-model', messages: [{ role: 'user', content: 'hi' }], tool_choice: 'none' };
			if (stream) {
				const out = await collect(await client.chat.completions.create({ ...req, stream: true }));
				assert.equal(out.content, 'Without tools.');
				assert.deepEqual(out.finish, ['stop']);
			} else {
				const r = await client.chat.completions.create(req);
				assert.equal(r.choices[0].message.content, 'Without tools.');
				assert.equal(r.choices[0].finish_reason, 'stop');
				assert.ok(!r.choices[0].message.tool_calls?.length);
			}
		}
		assert.deepEqual(await rows(gw, `SELECT v FROM ${t}`), [], 'no tool ran');
		assert.equal((await sim.requests()).length, 2, 'one upstream request each');
	});

	test('parallel_tool_calls false: passed upstream; two calls sent anyway run one after the other, in order', { timeout: TEST_TIMEOUT }, async () => {
		const t = await newTable();
		await sim.reset();
		await sim.script([
			{ tool_calls: [
				{ id: 'call_p1', name: 'write_query', arguments: { query: `INSERT INTO ${t}(v) VALUES ('first')` } },
				{ id: 'call_p2', name: 'write_query', arguments: { query: `INSERT INTO ${t}(v) VALUES ('second')` } },
			] },
			{ content: 'Both written.' },
		]);
		const s = await rawStream(gw, { model: 'sim-model', messages: [{ role: 'user', content: 'two rows' }], parallel_tool_calls: false });
		assert.equal(s.status, 200);
		const progress = s.events.filter(e => e.comment?.startsWith('mcpgw: tool ')).map(e => e.comment);
		assert.deepEqual(progress, [
			'mcpgw: tool write_query (sqlite) running', 'mcpgw: tool write_query (sqlite) done',
			'mcpgw: tool write_query (sqlite) running', 'mcpgw: tool write_query (sqlite) done',
		], 'one call at a time');
		assert.deepEqual(await rows(gw, `SELECT id, v FROM ${t} ORDER BY id`), [{ id: 1, v: 'first' }, { id: 2, v: 'second' }]);
		const reqs = await sim.requests();
		assert.equal(reqs.length, 2);
		for (const q of reqs) assert.equal(q.body.parallel_tool_calls, false, 'parallel_tool_calls passed upstream');
		assert.deepEqual(reqs[1].body.messages.filter(m => m.role === 'tool').map(m => m.tool_call_id), ['call_p1', 'call_p2']);
	});
	test('an MCP image reaches a model that takes images: an image_url part after the tool message, which keeps its note', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([{ tool_calls: [{ id: 'call_img', name: 'get-tiny-image', arguments: {} }] }, { content: 'A logo.' }]);
		const r = await client.chat.completions.create({ model: 'vision-model', messages: [{ role: 'user', content: 'show me' }] });
		assert.equal(r.choices[0].message.content, 'A logo.');
		const reqs = await sim.requests();
		assert.equal(reqs.length, 2);
		const tool = reqs[1].body.messages.find(m => m.role === 'tool');
		assert.match(tool.content, /^Here's the image you requested:\n\[image: image\/png, \d+ bytes\]\nThe image above is the MCP logo\.$/);
		const parts = imageParts(reqs[1].body);
		assert.equal(parts.length, 1);
		assert.match(parts[0].image_url.url, /^data:image\/png;base64,iVBORw0KGgo/);
	});

	test('a text-only upstream refusing image parts (400) still answers: the round is asked again with the text note; the model is remembered', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		const rounds = 4;
		for (let i = 0; i < rounds; i++) {
			await sim.append([
				{ tool_calls: [{ id: `call_ti${i}`, name: 'get-tiny-image', arguments: {} }] },
				{ match: '"image_url"', error: TEXT_ONLY_400 },
				{ content: `Described ${i}.` },
			]);
		}
		for (let i = 0; i < rounds; i++) {
			const stream = i % 2 === 1;
			const req = { model: 'deepseek-chat', messages: [{ role: 'user', content: `image ${i}` }] };
			if (stream) {
				const out = await collect(await client.chat.completions.create({ ...req, stream: true }));
				assert.equal(out.content, `Described ${i}.`);
				assert.deepEqual(out.finish, ['stop']);
			} else {
				const r = await client.chat.completions.create(req);
				assert.equal(r.choices[0].message.content, `Described ${i}.`);
				assert.equal(r.choices[0].finish_reason, 'stop');
			}
		}
		const reqs = await sim.requests();
		const refused = reqs.filter(q => q.status === 400);
		assert.ok(refused.length >= 1, 'the first image round was refused');
		for (const q of refused) {
			assert.equal(imageParts(q.body).length, 1, 'a refused round carried the image');
			const retry = reqs.find(x => x.seq > q.seq);
			assert.equal(retry.status, 200);
			assert.equal(imageParts(retry.body).length, 0, 'asked again without it');
			assert.match(retry.body.messages.find(m => m.role === 'tool').content, /\[image: image\/png, \d+ bytes\]/);
		}
		// a run that sent no image leaves its refusal turn unused (turns match on "image_url"): harmless.
		// FastCGI responders remember the model (each process once); plain CGI is a new process per request
		if (!/cgi$/.test(FRONTEND)) assert.ok(refused.length < rounds, `refused ${refused.length} of ${rounds} runs: the model is not remembered`);
	});

	test('a streamed completion sends ": keep-alive" at least every MCPGW_STREAM_KEEPALIVE while a tool runs; the SDK reads through them', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		const turns = () => [{ tool_calls: [{ name: 'trigger-long-running-operation', arguments: { duration: 1.5, steps: 3 } }] }, { content: 'Finished.' }];
		await sim.script(turns());
		const s = await timedStream(gw, { model: 'sim-model', messages: [{ role: 'user', content: 'long' }] });
		assert.equal(s.status, 200);
		const start = s.events.findIndex(e => e.comment === 'mcpgw: tool trigger-long-running-operation (everything) running');
		const end = s.events.findIndex(e => e.comment === 'mcpgw: tool trigger-long-running-operation (everything) done');
		assert.ok(start >= 0 && end > start, JSON.stringify(s.events.map(e => e.comment ?? e.data.slice(0, 40))));
		const during = s.events.slice(start, end + 1);
		const keepalives = during.filter(e => e.comment === 'keep-alive').length;
		assert.ok(keepalives >= 4, `${keepalives} keep-alive comments during a 1.5 s tool call (every 0.2 s)`);
		for (let i = 1; i < during.length; i++) {
			assert.ok(during[i].at - during[i - 1].at < 600, `a silence of ${Math.round(during[i].at - during[i - 1].at)} ms while the tool ran`);
		}
		assert.equal(s.events.at(-1).data, '[DONE]');
		// the SDK skips the comments
		await sim.script(turns());
		const out = await collect(await client.chat.completions.create({ model: 'sim-model', messages: [{ role: 'user', content: 'long' }], stream: true }));
		assert.equal(out.content, 'Finished.');
		assert.deepEqual(out.finish, ['stop']);
	});
});
