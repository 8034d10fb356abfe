// sim_profiles.test.mjs: the upstream simulator's provider profiles (tests/upstream-sim/profiles.mjs) send
// the quirks they record: each profile's wire shape and request rules, checked on the raw HTTP answers
// (no gateway). The gateway's handling of them is tests/blackbox/profiles_matrix.mjs.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startSim } from './gateway.mjs';
import { PROFILE_NAMES, getProfile, wireId } from '../upstream-sim/profiles.mjs';

const KEY = 'sk-sim';
const USER = [{ role: 'user', content: 'q' }];
const TWO_CALLS = {
	tool_calls: [{ id: 'call_one', name: 'echo', arguments: { message: 'hi there' } }, { id: 'call_two', name: 'get-sum', arguments: { a: 1, b: 2 } }],
	usage: { prompt_tokens: 9, completion_tokens: 4 }, reasoning: 'Pondering.',
};

/** the data payloads (parsed unless [DONE]) and comment lines of an SSE body */
function sse(text) {
	const data = [], comments = [];
	for (const block of text.split('\n\n')) {
		for (const line of block.split('\n')) {
			if (line.startsWith(':')) comments.push(line);
			else if (line.startsWith('data: ')) data.push(line.slice(6) === '[DONE]' ? '[DONE]' : JSON.parse(line.slice(6)));
		}
	}
	return { data, comments };
}

describe('upstream simulator provider profiles', () => {
	let sim;
	const chat = async (body, { path = '/v1/chat/completions', headers = { authorization: `Bearer ${KEY}` } } = {}) => {
		const r = await fetch(sim.base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
		const text = await r.text();
		let json;
		try { json = JSON.parse(text); } catch { json = undefined; }
		return { status: r.status, type: r.headers.get('content-type'), text, json };
	};
	const as = async (profile, turns) => {
		await sim.reset();
		await fetch(sim.base + '/_sim/profile', { method: 'POST', body: JSON.stringify({ profile }) });
		await sim.script(turns);
	};
	before(async () => { sim = await startSim(['--api-key', KEY]); });
	after(async () => { await sim?.stop(); });

	test('--profile names a known profile; POST /_sim/profile switches, GET tells; unknown names are refused', async () => {
		const got = await (await fetch(sim.base + '/_sim/profile')).json();
		assert.equal(got.profile, 'openai');
		assert.deepEqual(got.profiles, PROFILE_NAMES);
		for (const name of ['openai', 'azure', 'deepseek', 'dashscope', 'gemini', 'openrouter', 'ollama', 'vllm', 'llamacpp', 'lmstudio', 'mistral', 'groq', 'moonshot', 'zhipu', 'perplexity', 'sglang']) {
			assert.ok(PROFILE_NAMES.includes(name), `profile ${name}`);
		}
		const r = await fetch(sim.base + '/_sim/profile', { method: 'POST', body: '{"profile":"nosuch"}' });
		assert.equal(r.status, 400);
		assert.match((await r.json()).error, /unknown profile 'nosuch'/);
		const t = await fetch(sim.base + '/_sim/script', { method: 'POST', body: '[{"profile":"nosuch"}]' });
		assert.equal(t.status, 400, 'a turn naming an unknown profile is refused');
	});

	test('every profile: tool-call ids as wireId() says, the scripted arguments, streamed and not', async () => {
		for (const name of PROFILE_NAMES) {
			if (getProfile(name).request?.path === 'azure') continue; // its own path: the next tests
			await as(name, [TWO_CALLS, TWO_CALLS]);
			const ns = await chat({ model: 'sim-model', messages: USER });
			assert.equal(ns.status, 200, `${name}: ${ns.text}`);
			const calls = ns.json.choices[0].message.tool_calls;
			assert.deepEqual(calls.map(c => c.id), [wireId(name, 'call_one', { name: 'echo', index: 0 }), wireId(name, 'call_two', { name: 'get-sum', index: 1 })], `${name}: ids`);
			assert.deepEqual(calls.map(c => JSON.parse(c.function.arguments)), [{ message: 'hi there' }, { a: 1, b: 2 }], `${name}: arguments`);
			const st = await chat({ model: 'sim-model', messages: USER, stream: true });
			assert.equal(st.status, 200);
			const ids = new Set(), args = ['', ''];
			let order = 0;
			for (const c of sse(st.text).data) {
				for (const d of (c === '[DONE]' ? [] : c.choices ?? []).flatMap(ch => ch.delta?.tool_calls ?? [])) {
					if (d.id) ids.add(d.id);
					if (d.function?.name) order = d.function.name === 'get-sum' ? 1 : 0;
					if (typeof d.function?.arguments === 'string') args[order] += d.function.arguments;
				}
			}
			if (getProfile(name).ids !== 'empty') assert.deepEqual([...ids], [wireId(name, 'call_one', { name: 'echo', index: 0 }), wireId(name, 'call_two', { name: 'get-sum', index: 1 })], `${name}: streamed ids`);
			assert.deepEqual(args.map(a => JSON.parse(a)), [{ message: 'hi there' }, { a: 1, b: 2 }], `${name}: streamed arguments`);
		}
		assert.match(wireId('mistral', 'call_one'), /^[A-Za-z0-9]{9}$/);
		assert.match(wireId('ollama', 'call_one'), /^call_[a-z0-9]{8}$/);
		assert.match(wireId('dashscope', 'call_one'), /^call_[0-9a-f]{24}$/);
		assert.match(wireId('vllm', 'call_one'), /^chatcmpl-tool-[0-9a-f]{32}$/);
		assert.match(wireId('lmstudio', 'call_one'), /^[1-9][0-9]{8}$/);
		assert.equal(wireId('gemini', 'call_one'), '');
		assert.equal(wireId('moonshot', 'call_one', { name: 'echo', index: 0 }), 'functions.echo:0', 'kimi ids: name and position');
		assert.equal(wireId('sglang', 'call_two', { name: 'get-sum', index: 1 }), '1', 'seq ids: the position');
		assert.equal(wireId('openai', 'call_one'), 'call_one');
	});

	test('the openai SDK reads every profile\'s non-streamed answer', async () => {
		for (const name of PROFILE_NAMES) {
			if (getProfile(name).request?.path === 'azure') continue;
			await as(name, [{ content: `plain ${name}` }]);
			const client = new OpenAI({ apiKey: KEY, baseURL: sim.v1, maxRetries: 0 });
			const r = await client.chat.completions.create({ model: 'sim-model', messages: USER });
			assert.equal(r.choices[0].message.content, `plain ${name}`);
		}
	});

	test('streamed tool calls: index absent (gemini, ollama, moonshot), all 0 (sglang); one chunk (gemini, ollama); whole (groq, zhipu)', async () => {
		const shape = async name => {
			await as(name, [TWO_CALLS]);
			const chunks = sse((await chat({ model: 'sim-model', messages: USER, stream: true })).text).data.filter(c => c !== '[DONE]');
			return chunks.map(c => c.choices?.[0]?.delta?.tool_calls).filter(Boolean);
		};
		for (const name of ['gemini', 'ollama']) {
			const tc = await shape(name);
			assert.equal(tc.length, 1, `${name}: one chunk carries the calls`);
			assert.equal(tc[0].length, 2, `${name}: both calls in it`);
			assert.ok(tc[0].every(d => !('index' in d)), `${name}: no index`);
		}
		assert.ok((await shape('moonshot')).flat().every(d => !('index' in d)), 'moonshot: no index');
		const sg = (await shape('sglang')).flat();
		assert.ok(sg.every(d => d.index === 0), 'sglang: index 0 for both calls');
		assert.deepEqual([...new Set(sg.map(d => d.id))], ['0', '1'], 'sglang: ids "0", "1" on every delta');
		const vl = (await shape('vllm')).flat();
		assert.ok(vl.every(d => d.index === 0), 'vllm: index 0 for both calls');
		assert.ok(vl.filter(d => !d.function.name).every(d => d.id === ''), 'vllm: continuations with id ""');
		for (const name of ['groq', 'zhipu']) {
			const tc = await shape(name);
			assert.equal(tc.length, 2, `${name}: one chunk per call`);
			assert.ok(tc.every(x => x.length === 1 && x[0].function.name && x[0].function.arguments.length > 2), `${name}: whole calls`);
		}
		const ds = (await shape('dashscope')).flat();
		const cont = ds.filter(d => !d.function.name);
		assert.ok(cont.length >= 2 && cont.every(d => d.id === '' && d.type === 'function' && d.function.name === ''), `dashscope: continuations restate id "": ${JSON.stringify(ds)}`);
		assert.equal(cont.filter(d => d.function.arguments === null).length, 2, 'dashscope: one arguments:null tail per call');
		assert.ok((await shape('lmstudio')).flat().filter(d => !d.id).every(d => d.function.name === ''), 'lmstudio: continuations with name ""');
		const dk = (await shape('deepseek')).flat();
		assert.ok(dk.length > 2 && dk.every(d => d.id === (d.index === 0 ? wireId('deepseek', 'call_one') : wireId('deepseek', 'call_two'))), `deepseek: every delta repeats its call's id: ${JSON.stringify(dk)}`);
	});

	test('stream ends and extras: llamacpp no [DONE]; a turn\'s content_type; openrouter comments; azure preamble; gemini finishes tool calls with stop; sglang nulls', async () => {
		const stream = async (name, turns = [{ content: 'a b c' }]) => {
			await as(name, turns);
			return chat({ model: 'sim-model', messages: USER, stream: true }, name === 'azure'
				? { path: '/openai/deployments/sim-model/chat/completions?api-version=2024-10-21', headers: { 'api-key': KEY } } : undefined);
		};
		assert.notEqual(sse((await stream('llamacpp')).text).data.at(-1), '[DONE]', 'llamacpp: no [DONE]');
		await as('openai', [{ content: 'a b', content_type: 'text/plain; charset=utf-8' }]);
		assert.equal((await chat({ model: 'sim-model', messages: USER, stream: true })).type, 'text/plain; charset=utf-8', 'a turn\'s content_type');
		assert.equal(sse((await stream('openai')).text).data.at(-1), '[DONE]');
		const or = sse((await stream('openrouter')).text);
		assert.deepEqual(or.comments, [': OPENROUTER PROCESSING', ': OPENROUTER PROCESSING']);
		assert.ok(or.data.filter(c => c !== '[DONE]').every(c => c.provider === 'SimProvider'));
		const az = sse((await stream('azure')).text).data;
		assert.deepEqual(az[0].choices, [], 'azure: the first chunk has no choices');
		assert.equal(az[0].id, '');
		assert.ok(Array.isArray(az[0].prompt_filter_results));
		const gm = sse((await stream('gemini', [TWO_CALLS])).text).data.filter(c => c !== '[DONE]');
		assert.deepEqual(gm.map(c => c.choices[0].finish_reason).filter(Boolean), ['stop']);
		const sg = sse((await stream('sglang')).text).data.filter(c => c !== '[DONE]');
		assert.ok(sg.slice(0, -1).every(c => 'tool_calls' in c.choices[0].delta && c.choices[0].delta.tool_calls === null && 'usage' in c && 'matched_stop' in c.choices[0]));
	});

	test('usage conventions: trailing (openai, with include_usage), every chunk cumulative (perplexity), finish chunk (llamacpp), inside the choice (moonshot), x_groq (groq), always trailing (openrouter)', async () => {
		const u = { prompt_tokens: 10, completion_tokens: 6 };
		const chunksOf = async (name, includeUsage) => {
			await as(name, [{ content: 'one two three four', usage: u }]);
			const body = { model: 'sim-model', messages: USER, stream: true, ...(includeUsage ? { stream_options: { include_usage: true } } : {}) };
			return sse((await chat(body)).text).data.filter(c => c !== '[DONE]');
		};
		const brief = { prompt_tokens: 10, completion_tokens: 6, total_tokens: 16 };
		let c = await chunksOf('openai', false);
		assert.ok(c.every(x => !('usage' in x)), 'openai: no usage without include_usage');
		c = await chunksOf('openai', true);
		assert.deepEqual(c.at(-1).choices, []);
		assert.equal(c.at(-1).usage.total_tokens, 16);
		c = await chunksOf('perplexity', false);
		assert.ok(c.every(x => x.usage), 'perplexity: usage in every chunk');
		assert.deepEqual(c.at(-1).usage, brief, 'perplexity: the last is the total');
		assert.ok(c[0].usage.completion_tokens < 6, 'perplexity: running totals');
		c = await chunksOf('llamacpp', false);
		assert.deepEqual(c.at(-1).usage, brief);
		assert.ok(c.at(-1).choices[0].finish_reason && c.at(-1).timings);
		c = await chunksOf('moonshot', false);
		assert.deepEqual(c.at(-1).choices[0].usage, brief);
		assert.equal(c.at(-1).usage, undefined);
		c = await chunksOf('groq', false);
		assert.deepEqual(c.at(-1).x_groq.usage, brief);
		c = await chunksOf('groq', true);
		assert.deepEqual(c.at(-1).usage, brief);
		c = await chunksOf('openrouter', false);
		assert.deepEqual(c.at(-1).choices, []);
		assert.equal(c.at(-1).usage.total_tokens, 16);
	});

	test('reasoning: deepseek always, others from the turn; the field each profile names; openai never', async () => {
		for (const name of PROFILE_NAMES) {
			const field = getProfile(name).reasoning?.field;
			if (getProfile(name).request?.path === 'azure') continue;
			await as(name, [{ content: 'answer', reasoning: 'Because.' }, { content: 'answer', reasoning: 'Because.' }]);
			const ns = (await chat({ model: 'sim-model', messages: USER })).json.choices[0].message;
			const st = sse((await chat({ model: 'sim-model', messages: USER, stream: true })).text).data.filter(c => c !== '[DONE]');
			if (!field) {
				assert.ok(!('reasoning_content' in ns) && !('reasoning' in ns), `${name}: no reasoning`);
				continue;
			}
			assert.equal(ns[field], 'Because.', `${name}: ${field} in the message`);
			assert.equal(st.map(c => c.choices[0]?.delta?.[field] ?? '').join(''), 'Because.', `${name}: ${field} deltas`);
		}
		await as('deepseek', [{ content: 'answer' }]);
		assert.equal((await chat({ model: 'sim-model', messages: USER })).json.choices[0].message.reasoning_content, getProfile('deepseek').reasoning.always);
	});

	test('error shapes: string (lmstudio), list (gemini), object_error (vllm, mistral), numeric code (llamacpp, openrouter); OpenAI checks answered in them too', async () => {
		const err = async name => {
			await as(name, [{ error: { status: 400, message: 'nope', type: 'invalid_request_error' } }]);
			return (await chat({ model: 'sim-model', messages: USER })).json;
		};
		assert.deepEqual(await err('openai'), { error: { message: 'nope', type: 'invalid_request_error', param: null, code: null } });
		assert.deepEqual(await err('lmstudio'), { error: 'nope' });
		assert.deepEqual(await err('gemini'), [{ error: { code: 400, message: 'nope', status: 'INVALID_ARGUMENT' } }]);
		assert.deepEqual(await err('vllm'), { object: 'error', message: 'nope', type: 'invalid_request_error', param: null, code: 400 });
		assert.deepEqual(await err('llamacpp'), { error: { code: 400, message: 'nope', type: 'invalid_request_error' } });
		assert.deepEqual(await err('openrouter'), { error: { code: 400, message: 'nope', type: 'invalid_request_error' } });
		await as('openai', [{ error: { status: 422, message: 'field required', shape: 'detail' } }]);
		assert.deepEqual((await chat({ model: 'sim-model', messages: USER })).json, { detail: 'field required' }, 'a turn\'s error.shape');
		await as('vllm', []);
		const v = await chat({ model: 'sim-model', messages: [] });
		assert.equal(v.status, 400);
		assert.equal(v.json.object, 'error', 'the OpenAI request checks answer in the profile\'s shape');
	});

	test('request rules: deepseek images and reasoning passback, mistral ids, gemini schema types, sglang missing content', async () => {
		const call = id => ({ role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name: 'echo', arguments: '{}' } }] });
		const round = (id, extra = {}) => [...USER, { ...call(id), ...extra }, { role: 'tool', tool_call_id: id, content: 'ok' }];
		await as('deepseek', [{ content: 'x' }]);
		let r = await chat({ model: 'sim-model', messages: [{ role: 'user', content: [{ type: 'text', text: 'see' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }] });
		assert.equal(r.status, 400);
		assert.match(r.json.error.message, /^Failed to deserialize the JSON body into the target type: messages\[0\]: unknown variant `image_url`, expected `text` at line 1 column \d+$/);
		r = await chat({ model: 'sim-model', messages: round('call_x') });
		assert.equal(r.status, 400);
		assert.deepEqual(r.json.error, { message: 'The `reasoning_content` in the thinking mode must be passed back to the API.', type: 'invalid_request_error', param: null, code: 'invalid_request_error' });
		r = await chat({ model: 'sim-model', messages: round('call_x', { reasoning_content: 'I thought.' }) });
		assert.equal(r.status, 200, r.text);
		r = await chat({ model: 'sim-model', messages: [...round('call_x'), { role: 'assistant', content: 'done' }, { role: 'user', content: 'next' }] });
		assert.equal(r.status, 200, 'an earlier turn needs no reasoning_content');
		assert.equal(await sim.queued(), 0, 'the accepted ones consumed the turn; refusals consumed nothing');

		await as('mistral', [{ content: 'x' }]);
		r = await chat({ model: 'sim-model', messages: round('call_PTLP8xhu3uwZk4l3nlnrrJha') });
		assert.equal(r.status, 400);
		assert.equal(r.json.message, 'Tool call id was call_PTLP8xhu3uwZk4l3nlnrrJha but must be a-z, A-Z, 0-9, with a length of 9.');
		assert.equal(r.json.object, 'error');
		assert.equal((await chat({ model: 'sim-model', messages: round('aB3xK9mP2') })).status, 200);

		await as('gemini', [{ content: 'x' }]);
		const tool = parameters => ({ type: 'function', function: { name: 'f', parameters } });
		r = await chat({ model: 'sim-model', messages: USER, tools: [tool({ type: 'object', properties: { a: { type: 'string' }, b: { description: 'no type' } } })] });
		assert.equal(r.status, 400);
		assert.match(r.json[0].error.message, /^Invalid value at 'tools\[0\]\.function_declarations\[0\]\.parameters\.properties\[1\]\.value\.type'/);
		r = await chat({ model: 'sim-model', messages: USER, tools: [tool({ type: 'object', properties: { a: { anyOf: [{ type: 'string' }, { type: 'null' }] } } })] });
		assert.equal(r.status, 200, r.text);

		// sglang#8074: a missing content member is refused (400), null is accepted
		await as('sglang', [{ content: 'x' }]);
		const noContent = round('call_x').map(m => { if (m.role !== 'assistant') return m; const { content, ...rest } = m; void content; return rest; });
		r = await chat({ model: 'sim-model', messages: noContent });
		assert.equal(r.status, 400, r.text);
		assert.match(r.text, /Field required/);
		assert.equal((await chat({ model: 'sim-model', messages: round('call_x', { content: null }) })).status, 200);
	});

	test('azure: api-key header, deployment path with api-version; stream_options refused by old api-versions; the v1 API and the model list', async () => {
		await as('azure', [{ content: 'from azure' }, { content: 'again' }]);
		const path = v => `/openai/deployments/sim-model/chat/completions${v ? `?api-version=${v}` : ''}`;
		let r = await chat({ messages: USER }, { path: path('2024-10-21'), headers: { 'api-key': KEY } });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.choices[0].message.content, 'from azure');
		assert.equal(r.json.model, 'sim-model', 'the deployment names the model');
		r = await chat({ model: 'sim-model', messages: USER });
		assert.equal(r.status, 404, 'no /v1/chat/completions');
		assert.deepEqual(r.json, { error: { code: '404', message: 'Resource not found' } });
		r = await chat({ messages: USER }, { path: path(''), headers: { 'api-key': KEY } });
		assert.equal(r.status, 404, 'no api-version');
		r = await chat({ messages: USER }, { path: path('2024-10-21'), headers: { authorization: `Bearer ${KEY}` } });
		assert.equal(r.status, 401, 'Bearer is not how Azure takes the key');
		assert.equal(r.json.error.code, '401');
		r = await chat({ messages: USER, stream: true, stream_options: { include_usage: true } }, { path: path('2024-06-01'), headers: { 'api-key': KEY } });
		assert.equal(r.status, 400);
		assert.deepEqual(r.json, { error: { message: 'Unrecognized request argument supplied: stream_options', type: 'invalid_request_error', param: null, code: null } });
		r = await chat({ messages: USER, stream: true, stream_options: { include_usage: true } }, { path: path('2024-10-21'), headers: { 'api-key': KEY } });
		assert.equal(r.status, 200);
		const o3 = `/openai/deployments/o3-mini/chat/completions?api-version=2024-10-21`;
		r = await chat({ messages: USER, max_tokens: 50 }, { path: o3, headers: { 'api-key': KEY } });
		assert.equal(r.status, 400, 'max_tokens to a reasoning deployment');
		assert.deepEqual(r.json.error, { message: "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", type: 'invalid_request_error', param: 'max_tokens', code: 'unsupported_parameter' });
		await sim.script([{ content: 'o3 answers' }]);
		r = await chat({ messages: USER, max_completion_tokens: 50 }, { path: o3, headers: { 'api-key': KEY } });
		assert.equal(r.status, 200, r.text);
		// the v1 API: the model in the body, no api-version; the model list with an api-version
		await sim.script([{ content: 'v1 answers' }]);
		r = await chat({ model: 'sim-model', messages: USER }, { path: '/openai/v1/chat/completions', headers: { 'api-key': KEY } });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.choices[0].message.content, 'v1 answers');
		r = await chat({ model: 'sim-model', messages: USER }, { path: '/openai/v1/chat/completions', headers: { 'api-key': 'wrong' } });
		assert.equal(r.status, 401);
		const models = await fetch(sim.base + '/openai/models?api-version=2024-10-21', { headers: { 'api-key': KEY } });
		assert.equal(models.status, 200);
		assert.equal((await models.json()).object, 'list');
		await fetch(sim.base + '/_sim/profile', { method: 'POST', body: '{"profile":"openai"}' });
	});
});
