// history.test.mjs: the hidden history of a mixed batch stays with its owner (issue 14, case 3), end to end:
// the real `openai` npm SDK -> the real gateway (mcpgwctl: lighttpd + chat.fcgi + broker + the bundled SQLite
// server) -> the upstream simulator, whose turns repeat their tool-call ids ("call_0", "call_1" for every
// client; "" ; SGLang's "0", "1") as providers do.
//
//   node --test tests/blackbox/history.test.mjs
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startSim, startGateway, UPSTREAM_KEY } from './gateway.mjs';

const TEST_TIMEOUT = 30000;
const WEATHER = {
	type: 'function',
	function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
};
const MINTED = /^call_[A-Za-z0-9]{24}$/;

/** a scripted answer mixing read_query (run by the gateway: its rows are the secret) and the client's get_weather,
 * under the ids the upstream repeats for everyone */
const mixedTurn = (secret, { mcpId = 'call_1', clientId = 'call_0' } = {}) => ({
	tool_calls: [
		{ id: mcpId, name: 'read_query', arguments: { query: `SELECT '${secret}' AS secret` } },
		{ id: clientId, name: 'get_weather', arguments: { city: 'Oslo' } },
	],
});

describe('mixed-batch history bound to its owner', { timeout: 120000 }, () => {
	let sim, gw, client;

	before(async () => {
		// OpenAI's dialect whatever SIM_PROFILE says: the turns' ids go on the wire as scripted
		sim = await startSim(['--api-key', UPSTREAM_KEY, '--profile', 'openai']);
		// the default log level: restoring must not depend on debug logging
		gw = await startGateway({ sim, env: { MCPGW_LOG_LEVEL: 'info', MCPGW_UPSTREAM_RETRIES: '0' } });
		client = new OpenAI({ apiKey: 'sk-client', baseURL: gw.v1, maxRetries: 0, timeout: 20000 });
	});
	after(async () => {
		await gw?.stop();
		await sim?.stop();
	});

	/** one client's first request (its question): the assistant message it got, with one minted call id */
	async function ask(question, stream = false) {
		const messages = [{ role: 'user', content: question }];
		let msg;
		if (stream) {
			msg = (await client.chat.completions.stream({ model: 'sim-model', messages, tools: [WEATHER] }).finalChatCompletion()).choices[0].message;
		} else {
			const r = await client.chat.completions.create({ model: 'sim-model', messages, tools: [WEATHER] });
			assert.equal(r.choices[0].finish_reason, 'tool_calls');
			msg = r.choices[0].message;
		}
		assert.equal(msg.tool_calls?.length, 1, `only the client's call: ${JSON.stringify(msg)}`);
		assert.match(msg.tool_calls[0].id, MINTED, 'an id the gateway minted, not the upstream\'s');
		assert.ok(!JSON.stringify(msg).includes('read_query'), 'the MCP call stays hidden');
		return { role: 'assistant', content: msg.content ?? null, tool_calls: msg.tool_calls.map(c => ({ id: c.id, type: 'function', function: c.function })) };
	}

	/** the client comes back with its result for its call (as id); what the upstream got, as text */
	async function comeBack(question, assistant, result = 'sunny', id = assistant.tool_calls[0].id) {
		const since = (await sim.requests()).length;
		const messages = [{ role: 'user', content: question }, assistant, { role: 'tool', tool_call_id: id, content: result }];
		let error = null;
		try {
			await client.chat.completions.create({ model: 'sim-model', messages, tools: [WEATHER] });
		} catch (e) {
			error = e;
		}
		const reqs = (await sim.requests()).slice(since);
		assert.equal(reqs.length, 1, 'one upstream request');
		return { body: reqs[0].body, text: JSON.stringify(reqs[0].body), status: reqs[0].status, error };
	}

	/** the tool_call_id of each tool message the upstream got */
	const toolIds = body => body.messages.filter(m => m.role === 'tool').map(m => m.tool_call_id);

	test('clients whose upstream repeats "call_0": B never gets A\'s rows, C cannot overwrite A\'s, no replay', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			mixedTurn('A-SECRET-ROW'), mixedTurn('C-INJECTED-ROW'), mixedTurn('B-ROW'),
			{ content: 'b forged' }, { content: 'b guessed' }, { content: 'b done' }, { content: 'a done' }, { content: 'a replayed' },
		]);
		const a = await ask('A: the weather where my secret says');
		const c = await ask('A: the weather where my secret says'); // C: the same conversation, after A
		const b = await ask('B: the weather');
		assert.notEqual(a.tool_calls[0].id, c.tool_calls[0].id);

		// B presents the upstream's own id (the old key): nothing restored
		const forged = { ...b, tool_calls: [{ ...b.tool_calls[0], id: 'call_0' }] };
		let got = await comeBack('B: the weather', forged);
		assert.equal(got.status, 200, got.text);
		assert.ok(!got.text.includes('A-SECRET-ROW') && !got.text.includes('C-INJECTED-ROW') && !got.text.includes('B-ROW'), got.text);
		// B presents A's minted id in its own conversation: nothing restored (and A's is still there)
		got = await comeBack('B: the weather', a);
		assert.ok(!got.text.includes('A-SECRET-ROW'), got.text);
		// B's own: its rows, its result under the upstream's id, the history the upstream checks complete
		got = await comeBack('B: the weather', b, 'cloudy');
		assert.equal(got.status, 200, got.text);
		assert.ok(got.text.includes('B-ROW') && !got.text.includes('A-SECRET-ROW'), got.text);
		assert.deepEqual(got.body.messages.map(m => m.role), ['user', 'assistant', 'tool', 'tool']);
		assert.deepEqual(got.body.messages[1].tool_calls.map(t => t.id), ['call_1', 'call_0']);
		assert.deepEqual(toolIds(got.body), ['call_1', 'call_0']);
		// A's own, after C wrote its history in the same conversation with the same upstream ids
		got = await comeBack('A: the weather where my secret says', a, 'rainy');
		assert.equal(got.status, 200, got.text);
		assert.ok(got.text.includes('A-SECRET-ROW') && !got.text.includes('C-INJECTED-ROW'), got.text);
		assert.equal(got.body.messages.at(-1).content, 'rainy');
		assert.equal(got.body.messages.at(-1).tool_call_id, 'call_0');
		// a replay of A's request: used, not restored again
		got = await comeBack('A: the weather where my secret says', a, 'rainy');
		assert.equal(got.status, 200, got.text);
		assert.ok(!got.text.includes('A-SECRET-ROW'), got.text);
		assert.deepEqual(got.body.messages.map(m => m.role), ['user', 'assistant', 'tool'], 'the conversation as the client holds it');
		assert.deepEqual(toolIds(got.body), ['call_0'], 'under the upstream\'s id (the id map alone is kept for later turns)');
	});

	test('a retry after the upstream failed finds the history again; once answered it is gone', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([
			mixedTurn('D-SECRET-ROW'),
			{ error: { status: 400, message: 'try again', type: 'invalid_request_error' } },
			{ content: 'd done' }, { content: 'd replayed' },
		]);
		const d = await ask('D: weather');
		let got = await comeBack('D: weather', d);
		assert.ok(got.error, 'the client got the upstream\'s error');
		assert.ok(got.text.includes('D-SECRET-ROW'), got.text);
		got = await comeBack('D: weather', d);
		assert.equal(got.status, 200, got.text);
		assert.ok(got.text.includes('D-SECRET-ROW'), 'the retry: restored again');
		got = await comeBack('D: weather', d);
		assert.ok(!got.text.includes('D-SECRET-ROW'), 'answered once: gone');
	});

	test('empty upstream ids: the history is kept and restored', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([mixedTurn('E-SECRET-ROW', { mcpId: '', clientId: '' }), { content: 'e done' }]);
		const e = await ask('E: weather');
		const got = await comeBack('E: weather', e);
		assert.equal(got.status, 200, got.text);
		assert.ok(got.text.includes('E-SECRET-ROW'), got.text);
		const ids = toolIds(got.body);
		assert.equal(ids.length, 2);
		assert.ok(ids.every(id => id && got.body.messages[1].tool_calls.some(t => t.id === id)), 'each result answers a call');
	});

	test('streamed, with SGLang\'s ids "0" and "1": minted ids as they stream, the history restored', { timeout: TEST_TIMEOUT }, async () => {
		await sim.reset();
		await sim.script([mixedTurn('F-SECRET-ROW', { mcpId: '1', clientId: '0' }), { content: 'f done' }]);
		const f = await ask('F: weather', true);
		const got = await comeBack('F: weather', f);
		assert.equal(got.status, 200, got.text);
		assert.ok(got.text.includes('F-SECRET-ROW'), got.text);
		assert.deepEqual(toolIds(got.body), ['1', '0']);
	});
});
