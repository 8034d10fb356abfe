// profiles_matrix.mjs: the chat cases (text, MCP tool rounds, parallel calls, mixed batches, errors; streamed and not)
// through the real `openai` SDK and a real gateway, against every provider profile of the upstream simulator
// (tests/upstream-sim/profiles.mjs): one test per (profile, case), one gateway per profile.
//
//   node --test tests/blackbox/profiles_matrix.mjs
//   SIM_PROFILES=deepseek,gemini node --test tests/blackbox/profiles_matrix.mjs     (a subset)
//
// The cases hold for every dialect: what OpenAI answers is what the client must get, whatever the
// upstream's wire quirks are. Nothing here knows a profile's quirks except through profiles.mjs
// (the reasoning field a profile sends, the settings a gateway needs to reach it).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startSim, startGateway, defaultServers, UPSTREAM_KEY } from './gateway.mjs';
import { PROFILE_NAMES, getProfile } from '../upstream-sim/profiles.mjs';

const TEST_TIMEOUT = 20000;
const WEATHER = {
	type: 'function',
	function: {
		name: 'get_weather', description: 'the weather in a city',
		parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
	},
};
const usage = (p, c) => ({ prompt_tokens: p, completion_tokens: c });

const names = process.env.SIM_PROFILES ? process.env.SIM_PROFILES.split(',').map(s => s.trim()).filter(Boolean) : PROFILE_NAMES;
for (const n of names) getProfile(n); // an unknown name fails here, not as an empty run

/** iterate an SDK stream: content, the reasoning text of field, finishes, client tool-call deltas, usages */
async function collect(stream, field) {
	const out = { chunks: 0, content: '', reasoning: '', finish: [], toolDeltas: [], usage: [] };
	for await (const c of stream) {
		out.chunks++;
		if (c.usage) out.usage.push(c.usage);
		for (const ch of c.choices ?? []) {
			if (typeof ch.delta?.content === 'string') out.content += ch.delta.content;
			if (field && typeof ch.delta?.[field] === 'string') out.reasoning += ch.delta[field];
			if (ch.delta?.tool_calls) out.toolDeltas.push(...ch.delta.tool_calls);
			if (ch.finish_reason) out.finish.push(ch.finish_reason);
		}
	}
	return out;
}

/** client tool-call deltas folded by index */
function fold(deltas) {
	const calls = [];
	for (const d of deltas) {
		assert.equal(typeof d.index, 'number', `a tool-call delta for the client without index: ${JSON.stringify(d)}`);
		const c = calls[d.index] ??= { id: '', name: '', arguments: '' };
		if (d.id) c.id += d.id;
		if (d.function?.name) c.name += d.function.name;
		if (d.function?.arguments) c.arguments += d.function.arguments;
	}
	return calls;
}

/** the upstream's chat requests (any path: Azure's differs), every one answered 200 */
async function upstreamRequests(sim) {
	const reqs = (await sim.requests(0, null)).filter(r => r.method === 'POST' && /\/chat\/completions$/.test(r.path));
	for (const r of reqs) {
		assert.equal(r.status, 200, `upstream request #${r.seq} to ${r.path}${r.query ?? ''} was answered ${r.status}` +
			` (the simulator refused what the gateway sent): ${JSON.stringify(r.body?.messages)?.slice(0, 600)}`);
	}
	return reqs;
}

/** the same, for a round with tool images: a text-only upstream may refuse the first round that carries
 * image parts (400) once; then the gateway asks that round again without them (MCPGW_TOOL_IMAGES=auto) and
 * every other request is answered 200. Returns the requests that were answered 200. */
async function upstreamRequestsImageFallback(sim) {
	const all = (await sim.requests(0, null)).filter(r => r.method === 'POST' && /\/chat\/completions$/.test(r.path));
	const hasImage = r => JSON.stringify(r.body?.messages ?? []).includes('"image_url"');
	const ok = [];
	for (let i = 0; i < all.length; i++) {
		const r = all[i];
		if (r.status === 400 && hasImage(r) && i + 1 < all.length && !hasImage(all[i + 1])) continue;
		assert.equal(r.status, 200, `upstream request #${r.seq} to ${r.path} was answered ${r.status}: ` +
			JSON.stringify(r.body?.messages)?.slice(0, 600));
		ok.push(r);
	}
	assert.ok(all.length - ok.length <= 1, 'at most one refused round with images');
	return ok;
}

/** the result the upstream got for the call named name: the tool message answering that call's id */
function resultFor(body, name) {
	const a = body.messages.filter(m => m.role === 'assistant' && m.tool_calls?.length);
	const call = a.flatMap(m => m.tool_calls).find(c => c.function?.name === name);
	assert.ok(call, `no assistant tool call named ${name} in the history sent upstream: ${JSON.stringify(body.messages)}`);
	assert.ok(typeof call.id === 'string' && call.id.length > 0, `the call ${name} went back upstream with id ${JSON.stringify(call.id)}`);
	const answer = body.messages.find(m => m.role === 'tool' && m.tool_call_id === call.id);
	assert.ok(answer, `no tool message answers ${name} (${call.id}): ${JSON.stringify(body.messages)}`);
	return { call, content: answer.content };
}

/** every assistant message sent upstream has distinct, non-empty tool-call ids */
function assertIdsDistinct(body) {
	for (const m of body.messages.filter(x => x.role === 'assistant' && x.tool_calls?.length)) {
		const ids = m.tool_calls.map(c => c.id);
		assert.ok(ids.every(id => typeof id === 'string' && id.length > 0), `empty tool-call ids sent upstream: ${JSON.stringify(ids)}`);
		assert.equal(new Set(ids).size, ids.length, `repeated tool-call ids sent upstream: ${JSON.stringify(ids)}`);
	}
}

function assertUsage(got, want, what) {
	assert.ok(got, `${what}: no usage`);
	assert.equal(got.prompt_tokens, want.prompt_tokens, `${what}: prompt_tokens in ${JSON.stringify(got)}`);
	assert.equal(got.completion_tokens, want.completion_tokens, `${what}: completion_tokens in ${JSON.stringify(got)}`);
	assert.equal(got.total_tokens, want.prompt_tokens + want.completion_tokens, `${what}: total_tokens in ${JSON.stringify(got)}`);
}

for (const name of names) {
	const profile = getProfile(name);
	const field = profile.reasoning?.field;

	describe(`profile ${name}`, { timeout: 180000 }, () => {
		let sim, gw, client, startErr;

		before(async () => {
			try {
				sim = await startSim(['--api-key', UPSTREAM_KEY, '--profile', name]);
				gw = await startGateway({
					sim,
					env: { MCPGW_UPSTREAM_RETRIES: '0' },
					servers: home => ({ everything: defaultServers(home).everything }),
				});
				client = new OpenAI({ apiKey: 'sk-client', baseURL: gw.v1, maxRetries: 0, timeout: 15000 });
			} catch (e) { startErr = e; }
		});
		after(async () => {
			await gw?.stop();
			await sim?.stop();
		});
		const ready = () => { if (startErr) throw startErr; };
		/** the reasoning text a turn carries: sent only by profiles that have a reasoning field */
		const thought = tag => `Thinking about ${tag}.`;

		test(`${name}: text answer`, { timeout: TEST_TIMEOUT }, async () => {
			ready();
			await sim.reset();
			await sim.script([{ content: `Hello from ${name}.`, usage: usage(7, 3), reasoning: thought('text') }]);
			const r = await client.chat.completions.create({ model: 'sim-model', messages: [{ role: 'user', content: 'hi' }] });
			assert.equal(r.object, 'chat.completion');
			assert.equal(r.choices[0].message.content, `Hello from ${name}.`);
			assert.equal(r.choices[0].finish_reason, 'stop');
			assert.ok(!r.choices[0].message.tool_calls?.length, `no tool calls: ${JSON.stringify(r.choices[0].message.tool_calls)}`);
			assertUsage(r.usage, usage(7, 3), 'usage');
			if (field) assert.equal(r.choices[0].message[field], thought('text'), `the upstream's ${field} reaches the client`);
			await upstreamRequests(sim);
		});

		test(`${name}: text answer, streamed`, { timeout: TEST_TIMEOUT }, async () => {
			ready();
			await sim.reset();
			await sim.script([{ content: `Streamed hello from ${name}.`, usage: usage(7, 3), reasoning: thought('stream') }]);
			const got = await collect(await client.chat.completions.create({
				model: 'sim-model', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true },
			}), field);
			assert.equal(got.content, `Streamed hello from ${name}.`);
			assert.deepEqual(got.finish, ['stop'], 'exactly one finish_reason');
			assert.ok(got.usage.length >= 1, 'usage reaches the client');
			assertUsage(got.usage.at(-1), usage(7, 3), 'the last usage the client got');
			if (field) assert.equal(got.reasoning, thought('stream'), `the upstream's ${field} deltas reach the client`);
			await upstreamRequests(sim);
		});

		test(`${name}: a stream labelled application/x-ndjson`, { timeout: TEST_TIMEOUT }, async () => {
			// the body is SSE whatever the label (tests/upstream-sim/README.md, turn key content_type)
			ready();
			await sim.reset();
			await sim.script([{ content: `Labelled oddly by ${name}.`, usage: usage(7, 3), reasoning: thought('label'), content_type: 'application/x-ndjson' }]);
			const got = await collect(await client.chat.completions.create({
				model: 'sim-model', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true },
			}), field);
			assert.equal(got.content, `Labelled oddly by ${name}.`);
			assert.deepEqual(got.finish, ['stop']);
			await upstreamRequests(sim);
		});

		const roundTurns = tag => [
			{ tool_calls: [{ id: `call_${tag}_echo`, name: 'echo', arguments: { message: `echo ${name}` } }], usage: usage(3, 1), reasoning: thought(`${tag} round 1`) },
			{ content: `Done with ${tag}.`, usage: usage(4, 2), reasoning: thought(`${tag} round 2`) },
		];

		test(`${name}: MCP tool round`, { timeout: TEST_TIMEOUT }, async () => {
			ready();
			await sim.reset();
			await sim.script(roundTurns('tr'));
			const r = await client.chat.completions.create({ model: 'sim-model', messages: [{ role: 'user', content: 'echo something' }] });
			assert.equal(r.choices[0].message.content, 'Done with tr.');
			assert.equal(r.choices[0].finish_reason, 'stop');
			assertUsage(r.usage, usage(7, 3), 'usage summed over both rounds');
			const reqs = await upstreamRequests(sim);
			assert.equal(reqs.length, 2, 'two upstream requests');
			assert.equal(resultFor(reqs[1].body, 'echo').content, `Echo: echo ${name}`);
			assertIdsDistinct(reqs[1].body);
		});

		test(`${name}: MCP tool round, streamed`, { timeout: TEST_TIMEOUT }, async () => {
			ready();
			await sim.reset();
			await sim.script(roundTurns('ts'));
			const got = await collect(await client.chat.completions.create({
				model: 'sim-model', messages: [{ role: 'user', content: 'echo something' }], stream: true, stream_options: { include_usage: true },
			}), field);
			assert.equal(got.content, 'Done with ts.');
			assert.deepEqual(got.finish, ['stop']);
			assert.deepEqual(got.toolDeltas, [], 'no MCP tool-call deltas for the client');
			assertUsage(got.usage.at(-1), usage(7, 3), 'usage summed over both rounds');
			const reqs = await upstreamRequests(sim);
			assert.equal(reqs.length, 2, 'two upstream requests');
			const { call, content } = resultFor(reqs[1].body, 'echo');
			assert.equal(content, `Echo: echo ${name}`);
			assert.deepEqual(JSON.parse(call.function.arguments), { message: `echo ${name}` }, 'the streamed arguments, reassembled');
		});

		const parallelTurns = tag => [
			{
				tool_calls: [
					{ id: `call_${tag}_echo`, name: 'echo', arguments: { message: `par ${name}` } },
					{ id: `call_${tag}_sum`, name: 'get-sum', arguments: { a: 20, b: 22 } },
				],
				usage: usage(5, 2), reasoning: thought(`${tag} round 1`),
			},
			{ content: `Both done (${tag}).`, usage: usage(6, 1), reasoning: thought(`${tag} round 2`) },
		];

		for (const stream of [false, true]) {
			test(`${name}: parallel MCP calls in one round${stream ? ', streamed' : ''}`, { timeout: TEST_TIMEOUT }, async () => {
				ready();
				await sim.reset();
				const tag = stream ? 'ps' : 'pn';
				await sim.script(parallelTurns(tag));
				const args = { model: 'sim-model', messages: [{ role: 'user', content: 'two things' }] };
				let content, total;
				if (stream) {
					const got = await collect(await client.chat.completions.create({ ...args, stream: true, stream_options: { include_usage: true } }), field);
					assert.deepEqual(got.finish, ['stop']);
					assert.deepEqual(got.toolDeltas, [], 'no MCP tool-call deltas for the client');
					content = got.content;
					total = got.usage.at(-1);
				} else {
					const r = await client.chat.completions.create(args);
					assert.equal(r.choices[0].finish_reason, 'stop');
					content = r.choices[0].message.content;
					total = r.usage;
				}
				assert.equal(content, `Both done (${tag}).`);
				assertUsage(total, usage(11, 3), 'usage summed over both rounds');
				const reqs = await upstreamRequests(sim);
				assert.equal(reqs.length, 2, 'two upstream requests');
				const b = reqs[1].body;
				const a = b.messages.find(m => m.role === 'assistant' && m.tool_calls?.length);
				assert.deepEqual(a?.tool_calls?.map(c => c.function.name), ['echo', 'get-sum'], 'both calls sent back, in order');
				assertIdsDistinct(b);
				assert.equal(resultFor(b, 'echo').content, `Echo: par ${name}`);
				assert.equal(resultFor(b, 'get-sum').content, 'The sum of 20 and 22 is 42.');
			});
		}

		for (const stream of [false, true]) {
			test(`${name}: mixed batch (an MCP call and a client call)${stream ? ', streamed' : ''}`, { timeout: TEST_TIMEOUT }, async () => {
				ready();
				await sim.reset();
				const tag = stream ? 'ms' : 'mn';
				await sim.script([
					{
						tool_calls: [
							{ id: `call_${tag}_mcp`, name: 'echo', arguments: { message: `hidden ${name}` } },
							{ id: `call_${tag}_client`, name: 'get_weather', arguments: { city: 'Oslo' } },
						],
						usage: usage(10, 2), reasoning: thought(`${tag} round 1`),
					},
					{ content: `Oslo is cloudy (${tag}).`, usage: usage(20, 3), reasoning: thought(`${tag} round 2`) },
				]);
				const messages = [{ role: 'user', content: 'weather in Oslo' }];
				let assistant;
				if (stream) {
					const got = await collect(await client.chat.completions.create({ model: 'sim-model', messages, tools: [WEATHER], stream: true }), field);
					assert.deepEqual(got.finish, ['tool_calls']);
					const calls = fold(got.toolDeltas);
					assert.equal(calls.length, 1, `only the client's call: ${JSON.stringify(got.toolDeltas)}`);
					assert.equal(calls[0].name, 'get_weather');
					assert.deepEqual(JSON.parse(calls[0].arguments), { city: 'Oslo' });
					assert.ok(calls[0].id.length > 0, 'the client call has an id');
					assistant = { role: 'assistant', content: null, tool_calls: [{ id: calls[0].id, type: 'function', function: { name: 'get_weather', arguments: calls[0].arguments } }] };
					if (field && got.reasoning) assistant[field] = got.reasoning;
				} else {
					const r = await client.chat.completions.create({ model: 'sim-model', messages, tools: [WEATHER] });
					assert.equal(r.choices[0].finish_reason, 'tool_calls');
					const calls = r.choices[0].message.tool_calls ?? [];
					assert.equal(calls.length, 1, `only the client's call: ${JSON.stringify(calls)}`);
					assert.equal(calls[0].function.name, 'get_weather');
					assert.deepEqual(JSON.parse(calls[0].function.arguments), { city: 'Oslo' });
					assert.ok(typeof calls[0].id === 'string' && calls[0].id.length > 0, `the client call has an id: ${JSON.stringify(calls[0])}`);
					assertUsage(r.usage, usage(10, 2), 'usage of the first request');
					assistant = r.choices[0].message;
				}
				const id = assistant.tool_calls[0].id;
				const args = { model: 'sim-model', tools: [WEATHER], messages: [...messages, assistant, { role: 'tool', tool_call_id: id, content: 'cloudy' }] };
				let content;
				if (stream) content = (await collect(await client.chat.completions.create({ ...args, stream: true }), field)).content;
				else content = (await client.chat.completions.create(args)).choices[0].message.content;
				assert.equal(content, `Oslo is cloudy (${tag}).`);

				const reqs = await upstreamRequests(sim);
				assert.equal(reqs.length, 2, 'two upstream requests');
				const b = reqs[1].body;
				assert.deepEqual(b.messages.map(m => m.role), ['user', 'assistant', 'tool', 'tool'], 'the whole history upstream');
				assertIdsDistinct(b);
				assert.equal(resultFor(b, 'echo').content, `Echo: hidden ${name}`, 'the hidden MCP result restored');
				assert.equal(resultFor(b, 'get_weather').content, 'cloudy', "the client's result");
			});
		}

		for (const stream of [false, true]) {
			test(`${name}: the same MCP tool in two rounds${stream ? ', streamed' : ''}`, { timeout: TEST_TIMEOUT }, async () => {
				ready();
				await sim.reset();
				const tag = stream ? 'rs' : 'rn';
				await sim.script([
					{ tool_calls: [{ id: `call_${tag}_1`, name: 'echo', arguments: { message: 'first' } }], usage: usage(1, 1), reasoning: thought(`${tag} round 1`) },
					{ tool_calls: [{ id: `call_${tag}_2`, name: 'echo', arguments: { message: 'second' } }], usage: usage(2, 1), reasoning: thought(`${tag} round 2`) },
					{ content: `Echoed twice (${tag}).`, usage: usage(3, 1), reasoning: thought(`${tag} round 3`) },
				]);
				const args = { model: 'sim-model', messages: [{ role: 'user', content: 'echo twice' }] };
				const content = stream
					? (await collect(await client.chat.completions.create({ ...args, stream: true }), field)).content
					: (await client.chat.completions.create(args)).choices[0].message.content;
				assert.equal(content, `Echoed twice (${tag}).`);
				const reqs = await upstreamRequests(sim);
				assert.equal(reqs.length, 3, 'three upstream requests');
				const m = reqs[2].body.messages;
				assert.deepEqual(m.map(x => x.role), ['user', 'assistant', 'tool', 'assistant', 'tool'], 'both rounds in the history');
				assertIdsDistinct(reqs[2].body);
				for (const [i, want] of [[1, 'first'], [3, 'second']]) {
					assert.deepEqual(JSON.parse(m[i].tool_calls[0].function.arguments), { message: want });
					assert.equal(m[i + 1].tool_call_id, m[i].tool_calls[0].id, `round ${(i + 1) / 2}: the result answers its own call`);
					assert.equal(m[i + 1].content, `Echo: ${want}`, `round ${(i + 1) / 2}: its own result`);
				}
			});
		}

		for (const stream of [false, true]) {
			test(`${name}: an MCP tool that returns an image${stream ? ', streamed' : ''}`, { timeout: TEST_TIMEOUT }, async () => {
				ready();
				await sim.reset();
				const tag = stream ? 'is' : 'in';
				await sim.script([
					{ tool_calls: [{ id: `call_${tag}_img`, name: 'get-tiny-image', arguments: {} }], usage: usage(2, 1), reasoning: thought(`${tag} round 1`) },
					{ content: `Saw it (${tag}).`, usage: usage(3, 1), reasoning: thought(`${tag} round 2`) },
				]);
				const args = { model: 'sim-model', messages: [{ role: 'user', content: 'show me the image' }] };
				const content = stream
					? (await collect(await client.chat.completions.create({ ...args, stream: true }), field)).content
					: (await client.chat.completions.create(args)).choices[0].message.content;
				assert.equal(content, `Saw it (${tag}).`);
				const reqs = await upstreamRequestsImageFallback(sim);
				assert.equal(reqs.length, 2, 'two upstream requests answered');
				resultFor(reqs[1].body, 'get-tiny-image');
			});
		}

		test(`${name}: an upstream error arrives as an OpenAI error object`, { timeout: TEST_TIMEOUT }, async () => {
			ready();
			await sim.reset();
			for (const stream of [false, true]) {
				await sim.script([{ error: { status: 400, message: `${name} refuses this request`, type: 'invalid_request_error' } }]);
				let err;
				try {
					const r = await client.chat.completions.create({ model: 'sim-model', messages: [{ role: 'user', content: 'no' }], stream });
					if (stream) for await (const c of r) void c;
				} catch (e) { err = e; }
				const what = stream ? 'streamed' : 'not streamed';
				assert.ok(err instanceof OpenAI.APIError, `${what}: expected an APIError, got ${err?.constructor?.name ?? 'success'}: ${err?.message}`);
				assert.equal(err.status, 400, `${what}: ${err.message}`);
				assert.ok(err.error && typeof err.error === 'object' && !Array.isArray(err.error), `${what}: the error body is not an OpenAI error object: ${JSON.stringify(err.error)}`);
				assert.equal(typeof err.error.message, 'string', `${what}: error.message: ${JSON.stringify(err.error)}`);
				assert.match(err.error.message, new RegExp(`${name} refuses this request`), `${what}: the provider's message: ${JSON.stringify(err.error)}`);
				assert.equal(typeof err.error.type, 'string', `${what}: error.type: ${JSON.stringify(err.error)}`);
			}
		});
	});
}
