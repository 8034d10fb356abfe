#!/usr/bin/env node
// sim.mjs: a scripted stand-in for an OpenAI-compatible upstream LLM, for mcpgw's tests.
//
//   node tests/upstream-sim/sim.mjs --port 0 [--script turns.json] [--api-key KEY]
//        [--models a,b,c] [--any-model] [--no-validate] [--no-obfuscation]
//        [--keepalive-ms 5000] [--models-delay-ms 0] [--profile NAME] [--verbose]
//        [--auto-tool NAME[:ARGS_JSON]] [--chunk-delay-ms MS] [--chunks K]
//
// Listens on 127.0.0.1 only and prints exactly one line, "LISTENING <port>", on stdout
// when ready. Speaks the OpenAI wire format (chat completions with and without SSE
// streaming, models, embeddings, error objects) and answers chat completions from a
// queue of scripted "turns" that tests load through the /_sim control API. --profile NAME (or a
// turn's "profile", or POST /_sim/profile) speaks a provider's dialect instead: see profiles.mjs.
// See README.md next to this file. Node's standard library only.

import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { PROFILE_NAMES, getProfile, wireId, errorBody, checkRequest } from './profiles.mjs';

// ---------------------------------------------------------------------------
// command line

function usage(msg) {
	if (msg) process.stderr.write(`sim: ${msg}\n`);
	process.stderr.write('usage: sim.mjs [--port N] [--script FILE] [--api-key KEY] [--models a,b] [--any-model]\n' +
		'               [--no-validate] [--no-obfuscation] [--keepalive-ms MS] [--models-delay-ms MS]\n' +
		`               [--profile ${PROFILE_NAMES.join('|')}] [--verbose]\n` +
		'               [--auto-tool NAME[:ARGS_JSON]] [--chunk-delay-ms MS] [--chunks K]\n');
	process.exit(2);
}

const opts = {
	port: 0, script: null, apiKey: null, models: null, anyModel: false,
	validate: true, obfuscation: true, keepAliveMs: 5000, modelsDelayMs: 0, verbose: false, profile: 'openai',
	autoTool: null, chunkDelayMs: null, chunks: null,
};
{
	const argv = process.argv.slice(2);
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const val = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
		switch (a) {
			case '--port': opts.port = Number(val()); break;
			case '--script': opts.script = val(); break;
			case '--api-key': opts.apiKey = val(); break;
			case '--models': opts.models = val().split(',').map(s => s.trim()).filter(Boolean); break;
			case '--any-model': opts.anyModel = true; break;
			case '--no-validate': opts.validate = false; break;
			case '--no-obfuscation': opts.obfuscation = false; break;
			case '--keepalive-ms': opts.keepAliveMs = Number(val()); break;
			case '--models-delay-ms': opts.modelsDelayMs = Number(val()); break;
			case '--profile': opts.profile = val(); break;
			case '--auto-tool': {
				// NAME or NAME:ARGS_JSON (the arguments of every call; default {})
				const v = val();
				const c = v.indexOf(':');
				const name = c < 0 ? v : v.slice(0, c);
				let args = {};
				if (c >= 0) {
					try { args = JSON.parse(v.slice(c + 1)); } catch (e) { usage(`--auto-tool ${v}: the arguments are not JSON: ${e.message}`); }
					if (args === null || typeof args !== 'object' || Array.isArray(args)) usage(`--auto-tool ${v}: the arguments must be a JSON object`);
				}
				if (!/^[a-zA-Z0-9_-]{1,64}$/.test(name)) usage(`--auto-tool ${v}: bad tool name`);
				opts.autoTool = { name, arguments: args };
				break;
			}
			case '--chunk-delay-ms': opts.chunkDelayMs = Number(val()); break;
			case '--chunks': opts.chunks = Number(val()); break;
			case '--verbose': case '-v': opts.verbose = true; break;
			case '--help': case '-h': usage(); break;
			default: usage(`unknown argument ${a}`);
		}
	}
	if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('bad --port');
	if (!Number.isFinite(opts.keepAliveMs) || opts.keepAliveMs < 0) usage('bad --keepalive-ms');
	if (!Number.isFinite(opts.modelsDelayMs) || opts.modelsDelayMs < 0) usage('bad --models-delay-ms');
	if (opts.chunkDelayMs !== null && !(Number.isFinite(opts.chunkDelayMs) && opts.chunkDelayMs >= 0)) usage('bad --chunk-delay-ms');
	if (opts.chunks !== null && !(Number.isInteger(opts.chunks) && opts.chunks >= 1)) usage('bad --chunks');
	try { getProfile(opts.profile); } catch (e) { usage(e.message); }
}

const vlog = (...a) => { if (opts.verbose) process.stderr.write(`sim: ${a.join(' ')}\n`); };

// ---------------------------------------------------------------------------
// models

const MODEL_CREATED = {
	'gpt-4o-mini': 1721172741, 'gpt-4o': 1715367049, 'gpt-4.1-mini': 1744318173,
	'gpt-3.5-turbo': 1677610602, 'sim-model': 1700000000,
	'text-embedding-3-small': 1705948997, 'text-embedding-3-large': 1705953180,
	'text-embedding-ada-002': 1671217299,
};
const MODELS = (opts.models ?? Object.keys(MODEL_CREATED)).map(id => ({
	id, object: 'model', created: MODEL_CREATED[id] ?? 1700000000, owned_by: id.startsWith('sim') ? 'mcpgw-sim' : 'system',
}));
const EMBED_DIMS = { 'text-embedding-3-small': 1536, 'text-embedding-3-large': 3072, 'text-embedding-ada-002': 1536 };
const knownModel = id => opts.anyModel || MODELS.some(m => m.id === id);

// ---------------------------------------------------------------------------
// state

let queue = [];           // scripted turns, consumed in order
let log = [];             // requests received on /v1 (not /_sim)
let seq = 0;              // request sequence number (never reset, so ?since= stays usable)
let connSeq = 0;
let openConns = 0;
let allConns = 0;         // TCP connections accepted
const apiConns = new Set(); // connections that carried at least one /v1 request
let expectFailures = [];
let expectChecked = 0;
let profileName = opts.profile; // the dialect spoken (POST /_sim/profile changes it; a turn's "profile" overrides it)

function checkTurns(turns) {
	if (!Array.isArray(turns)) throw new Error('expected a JSON array of turns (or {"turns": [...]})');
	turns.forEach((t, i) => {
		if (t === null || typeof t !== 'object' || Array.isArray(t)) throw new Error(`turn ${i} is not an object`);
		if (t.profile !== undefined) getProfile(t.profile);
	});
	return turns;
}
function turnsFrom(json) {
	return checkTurns(Array.isArray(json) ? json : json?.turns);
}

if (opts.script) {
	try {
		queue = turnsFrom(JSON.parse(fs.readFileSync(opts.script, 'utf8')));
	} catch (e) {
		process.stderr.write(`sim: --script ${opts.script}: ${e.message}\n`);
		process.exit(2);
	}
}

// ---------------------------------------------------------------------------
// helpers

const B62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function randId(n) {
	const bytes = crypto.randomBytes(n);
	let s = '';
	for (let i = 0; i < n; i++) s += B62[bytes[i] % 62];
	return s;
}
const FINGERPRINT = 'fp_' + crypto.createHash('sha256').update('mcpgw-sim').digest('hex').slice(0, 10);
const sleep = ms => new Promise(r => setTimeout(r, ms));
// delayOrGone: wait ms for a turn's delay_ms, or less when the client's connection closes first
// (a gateway that gives up is seen at once in /_sim/requests as aborted): true when it closed
const delayOrGone = (req, ms) => new Promise(r => {
	if (req.socket.destroyed) return r(true);
	const done = gone => { clearTimeout(t); req.socket.off('close', onClose); r(gone); };
	const onClose = () => done(true);
	const t = setTimeout(() => done(req.socket.destroyed), ms);
	req.socket.once('close', onClose);
});
const estTokens = s => (s ? Math.max(1, Math.ceil(String(s).length / 4)) : 0);

function oaiError(message, type, param = null, code = null) {
	return { error: { message, type, param, code } };
}

function baseHeaders(extra) {
	return {
		'x-request-id': 'req_' + crypto.randomBytes(16).toString('hex'),
		'openai-version': '2020-10-01',
		'openai-organization': 'mcpgw-sim',
		'openai-processing-ms': '1',
		...extra,
	};
}

function sendJSON(res, status, obj, headers = {}) {
	const body = Buffer.from(JSON.stringify(obj));
	res.writeHead(status, baseHeaders({ 'content-type': 'application/json', 'content-length': body.length, ...headers }));
	res.end(body);
}

function textOf(content) {
	if (typeof content === 'string') return content;
	if (Array.isArray(content)) return content.map(p => (p && typeof p.text === 'string' ? p.text : '')).join('');
	return '';
}

// split a string into n nearly equal pieces by code point (no surrogate pair is cut)
function splitN(s, n) {
	const cps = Array.from(s);
	n = Math.max(1, Math.min(n, cps.length));
	const out = [];
	for (let i = 0; i < n; i++) out.push(cps.slice(Math.floor(i * cps.length / n), Math.floor((i + 1) * cps.length / n)).join(''));
	return out;
}
// token-like pieces: each word with its leading whitespace
function splitWords(s) {
	const parts = s.match(/\s*\S+|\s+$/g) ?? [];
	return parts.length ? parts : (s ? [s] : []);
}

// deep "subset" match for expectations: every key of want must match in got
function subsetMatch(want, got) {
	if (want === null || typeof want !== 'object') return want === got;
	if (Array.isArray(want)) {
		return Array.isArray(got) && got.length === want.length && want.every((w, i) => subsetMatch(w, got[i]));
	}
	if (got === null || typeof got !== 'object' || Array.isArray(got)) return false;
	return Object.keys(want).every(k => subsetMatch(want[k], got[k]));
}

// ---------------------------------------------------------------------------
// request validation, modelled on the real API's 400 answers

const ROLES = ['system', 'assistant', 'user', 'function', 'tool', 'developer'];
const typeName = v => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v);

function bad(message, param = null, code = null) {
	return { status: 400, body: oaiError(message, 'invalid_request_error', param, code) };
}
const missing = p => bad(`Missing required parameter: '${p}'.`, p, 'missing_required_parameter');
const badType = (p, want, v) => bad(`Invalid type for '${p}': expected ${want}, but got ${/^[aeiou]/.test(typeName(v)) ? 'an' : 'a'} ${typeName(v)} instead.`, p, 'invalid_type');

function validateChat(body) {
	if (body.model === undefined) return bad('you must provide a model parameter');
	if (typeof body.model !== 'string') return badType('model', 'a string', body.model);
	if (body.messages === undefined) return missing('messages');
	if (!Array.isArray(body.messages)) return badType('messages', 'an array of objects', body.messages);
	if (body.messages.length === 0) {
		return bad("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", 'messages', 'empty_array');
	}
	const msgs = body.messages;
	for (let i = 0; i < msgs.length; i++) {
		const m = msgs[i];
		const p = `messages[${i}]`;
		if (m === null || typeof m !== 'object' || Array.isArray(m)) return badType(p, 'an object', m);
		if (m.role === undefined) return missing(`${p}.role`);
		if (!ROLES.includes(m.role)) {
			return bad(`Invalid value: '${m.role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.`, `${p}.role`, 'invalid_value');
		}
		const contentOk = c => typeof c === 'string' || Array.isArray(c);
		if (m.role === 'assistant') {
			if (m.tool_calls !== undefined && m.tool_calls !== null) {
				if (!Array.isArray(m.tool_calls)) return badType(`${p}.tool_calls`, 'an array of objects', m.tool_calls);
				if (m.tool_calls.length === 0) {
					return bad(`Invalid '${p}.tool_calls': empty array. Expected an array with minimum length 1, but got an empty array instead.`, `${p}.tool_calls`, 'empty_array');
				}
				for (let j = 0; j < m.tool_calls.length; j++) {
					const tc = m.tool_calls[j];
					const tp = `${p}.tool_calls[${j}]`;
					if (tc === null || typeof tc !== 'object') return badType(tp, 'an object', tc);
					if (tc.id === undefined) return missing(`${tp}.id`);
					if (typeof tc.id !== 'string') return badType(`${tp}.id`, 'a string', tc.id);
					if (tc.type === undefined) return missing(`${tp}.type`);
					if (tc.type !== 'function') return bad(`Invalid value: '${tc.type}'. Supported values are: 'function'.`, `${tp}.type`, 'invalid_value');
					if (tc.function === undefined) return missing(`${tp}.function`);
					if (tc.function === null || typeof tc.function !== 'object') return badType(`${tp}.function`, 'an object', tc.function);
					if (tc.function.name === undefined) return missing(`${tp}.function.name`);
					if (typeof tc.function.name !== 'string') return badType(`${tp}.function.name`, 'a string', tc.function.name);
					if (tc.function.arguments === undefined) return missing(`${tp}.function.arguments`);
					if (typeof tc.function.arguments !== 'string') return badType(`${tp}.function.arguments`, 'a string', tc.function.arguments);
				}
				if (m.content !== undefined && m.content !== null && !contentOk(m.content)) return badType(`${p}.content`, 'one of a string or array of objects', m.content);
			} else if (m.content === undefined || m.content === null) {
				if (m.function_call === undefined && (typeof m.refusal !== 'string')) {
					return bad(`Invalid value for 'content': expected a string, got null.`, `${p}.content`);
				}
			} else if (!contentOk(m.content)) {
				return badType(`${p}.content`, 'one of a string or array of objects', m.content);
			}
		} else {
			if (m.content === undefined) return missing(`${p}.content`);
			if (!contentOk(m.content)) return badType(`${p}.content`, 'one of a string or array of objects', m.content);
			if (m.role === 'tool') {
				if (m.tool_call_id === undefined) return missing(`${p}.tool_call_id`);
				if (typeof m.tool_call_id !== 'string') return badType(`${p}.tool_call_id`, 'a string', m.tool_call_id);
			}
		}
	}
	// tool call sequencing: an assistant message with tool_calls must be followed (immediately,
	// by tool messages only) with a response for each id; a tool message must answer one.
	let pending = null; // {index, ids:Set}
	for (let i = 0; i < msgs.length; i++) {
		const m = msgs[i];
		if (m.role === 'tool') {
			if (!pending) {
				return bad("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", `messages.[${i}].role`);
			}
			if (!pending.all.has(m.tool_call_id)) {
				return bad(`Invalid parameter: 'tool_call_id' of '${m.tool_call_id}' not found in 'tool_calls' of previous message.`, `messages.[${i}].tool_call_id`);
			}
			pending.ids.delete(m.tool_call_id);
			continue;
		}
		if (pending && pending.ids.size) {
			return bad(`An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...pending.ids].join(', ')}`, `messages.[${pending.index}].role`);
		}
		pending = null;
		if (m.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length) {
			const ids = m.tool_calls.map(tc => tc.id);
			pending = { index: i, ids: new Set(ids), all: new Set(ids) };
		}
	}
	if (pending && pending.ids.size) {
		return bad(`An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...pending.ids].join(', ')}`, `messages.[${pending.index}].role`);
	}
	// tools
	if (body.tools !== undefined && body.tools !== null) {
		if (!Array.isArray(body.tools)) return badType('tools', 'an array of objects', body.tools);
		if (body.tools.length === 0) {
			return bad("Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty array instead.", 'tools', 'empty_array');
		}
		if (body.tools.length > 128) {
			return bad(`Invalid 'tools': array too long. Expected an array with maximum length 128, but got an array with length ${body.tools.length} instead.`, 'tools', 'array_above_max_length');
		}
		for (let i = 0; i < body.tools.length; i++) {
			const t = body.tools[i];
			const p = `tools[${i}]`;
			if (t === null || typeof t !== 'object') return badType(p, 'an object', t);
			if (t.type === undefined) return missing(`${p}.type`);
			if (t.type !== 'function' && t.type !== 'custom') return bad(`Invalid value: '${t.type}'. Supported values are: 'function' and 'custom'.`, `${p}.type`, 'invalid_value');
			if (t.type === 'custom') continue;
			if (t.function === undefined) return missing(`${p}.function`);
			if (t.function === null || typeof t.function !== 'object') return badType(`${p}.function`, 'an object', t.function);
			const name = t.function.name;
			if (name === undefined) return missing(`${p}.function.name`);
			if (typeof name !== 'string') return badType(`${p}.function.name`, 'a string', name);
			if (name.length > 64) {
				return bad(`Invalid '${p}.function.name': string too long. Expected a string with maximum length 64, but got a string with length ${name.length} instead.`, `${p}.function.name`, 'string_above_max_length');
			}
			if (!/^[a-zA-Z0-9_-]+$/.test(name)) {
				return bad(`Invalid '${p}.function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`, `${p}.function.name`, 'invalid_value');
			}
			const params = t.function.parameters;
			if (params !== undefined && params !== null) {
				if (typeof params !== 'object' || Array.isArray(params)) return badType(`${p}.function.parameters`, 'an object', params);
				if (params.type !== 'object') {
					return bad(`Invalid schema for function '${name}': schema must be a JSON Schema of 'type: "object"', got 'type: "${params.type ?? 'None'}"'.`, `${p}.function.parameters`, 'invalid_function_parameters');
				}
			}
		}
	}
	if (body.tool_choice !== undefined && body.tool_choice !== null && !(Array.isArray(body.tools) && body.tools.length)) {
		return bad("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", 'tool_choice');
	}
	if (body.stream_options !== undefined && body.stream_options !== null && body.stream !== true) {
		return bad("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options');
	}
	return null;
}

// ---------------------------------------------------------------------------
// turns

// index of the first queued turn for this endpoint whose "match" (if any) occurs in the raw body
function pickTurn(endpoint, raw) {
	for (let i = 0; i < queue.length; i++) {
		const t = queue[i];
		if ((t.endpoint ?? 'chat') !== endpoint) continue;
		if (t.match !== undefined) {
			const ms = Array.isArray(t.match) ? t.match : [t.match];
			if (!ms.every(s => raw.includes(String(s)))) continue;
		}
		return i;
	}
	return -1;
}

// --auto-tool: the turn of a request no queued turn matches: a call of that tool when the last
// message is not a tool result (a first round), a text answer when it is (the round after the
// tool ran). Each request is answered from its own body, so any number of concurrent
// conversations, in any order, each get one tool round. null without --auto-tool.
function autoTurn(body) {
	if (!opts.autoTool) return null;
	const msgs = Array.isArray(body?.messages) ? body.messages : [];
	if (msgs.at(-1)?.role === 'tool') return {};
	return { tool_calls: [{ name: opts.autoTool.name, arguments: opts.autoTool.arguments }] };
}

// --chunk-delay-ms and --chunks: the chunk_delay_ms and chunks of every turn that sets none
function withDefaults(turn) {
	if (opts.chunkDelayMs === null && opts.chunks === null) return turn;
	const t = { ...turn };
	if (opts.chunkDelayMs !== null && t.chunk_delay_ms === undefined) t.chunk_delay_ms = opts.chunkDelayMs;
	if (opts.chunks !== null && t.chunks === undefined) t.chunks = opts.chunks;
	return t;
}

function checkExpect(entry, turn) {
	const e = turn.expect;
	if (!e || typeof e !== 'object') return;
	expectChecked++;
	const body = entry.body ?? {};
	const raw = entry.raw ?? JSON.stringify(entry.body);
	const fails = [];
	const msgs = Array.isArray(body.messages) ? body.messages : [];
	const toolNames = Array.isArray(body.tools) ? body.tools.map(t => t?.function?.name) : [];
	if ('model' in e && body.model !== e.model) fails.push(`model is ${JSON.stringify(body.model)}, expected ${JSON.stringify(e.model)}`);
	if ('stream' in e && (body.stream === true) !== e.stream) fails.push(`stream is ${JSON.stringify(body.stream)}, expected ${e.stream}`);
	if ('messages_count' in e && msgs.length !== e.messages_count) fails.push(`${msgs.length} messages, expected ${e.messages_count}`);
	if ('min_messages' in e && msgs.length < e.min_messages) fails.push(`${msgs.length} messages, expected at least ${e.min_messages}`);
	if ('roles' in e && JSON.stringify(msgs.map(m => m?.role)) !== JSON.stringify(e.roles)) fails.push(`roles ${JSON.stringify(msgs.map(m => m?.role))}, expected ${JSON.stringify(e.roles)}`);
	if ('last_role' in e && msgs.at(-1)?.role !== e.last_role) fails.push(`last role ${msgs.at(-1)?.role}, expected ${e.last_role}`);
	if ('last_content' in e && textOf(msgs.at(-1)?.content) !== e.last_content) fails.push(`last content ${JSON.stringify(textOf(msgs.at(-1)?.content))}, expected ${JSON.stringify(e.last_content)}`);
	if ('tools' in e) {
		for (const n of e.tools) if (!toolNames.includes(n)) fails.push(`tool ${n} not offered (tools: ${toolNames.join(', ')})`);
	}
	if ('tools_count' in e && toolNames.length !== e.tools_count) fails.push(`${toolNames.length} tools, expected ${e.tools_count}`);
	if (e.no_tools === true && toolNames.length) fails.push(`tools offered: ${toolNames.join(', ')}`);
	for (const s of [].concat(e.contains ?? [])) if (!raw.includes(s)) fails.push(`body does not contain ${JSON.stringify(s)}`);
	for (const s of [].concat(e.not_contains ?? [])) if (raw.includes(s)) fails.push(`body contains ${JSON.stringify(s)}`);
	for (const [k, v] of Object.entries(e.headers ?? {})) {
		const got = entry.headers[k.toLowerCase()];
		if (got !== v) fails.push(`header ${k} is ${JSON.stringify(got)}, expected ${JSON.stringify(v)}`);
	}
	if ('body' in e && !subsetMatch(e.body, body)) fails.push(`body does not match ${JSON.stringify(e.body)}`);
	if (fails.length) {
		entry.expect_failures = fails;
		for (const f of fails) expectFailures.push({ seq: entry.seq, failure: f });
		vlog(`expectation failed on request ${entry.seq}: ${fails.join('; ')}`);
	}
}

function defaultErrorFor(status, model) {
	switch (status) {
		case 400: return ['Invalid request.', 'invalid_request_error', null, null];
		case 401: return ['Incorrect API key provided: sk-sim***. You can find your API key at https://platform.openai.com/account/api-keys.', 'invalid_request_error', null, 'invalid_api_key'];
		case 403: return ['Country, region, or territory not supported', 'request_forbidden', null, 'unsupported_country_region_territory'];
		case 404: return [`The model \`${model}\` does not exist or you do not have access to it.`, 'invalid_request_error', null, 'model_not_found'];
		case 429: return [`Rate limit reached for ${model} in organization org-mcpgwsim on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.`, 'requests', null, 'rate_limit_exceeded'];
		case 500: return ['The server had an error while processing your request. Sorry about that!', 'server_error', null, null];
		case 502: return ['Bad gateway.', 'server_error', null, null];
		case 503: return ['The server is overloaded or not ready yet.', 'server_error', null, null];
		default: return [`Error ${status}.`, status >= 500 ? 'server_error' : 'invalid_request_error', null, null];
	}
}

function sendTurnError(res, err, model, prof = getProfile('openai')) {
	const status = err.status ?? 500;
	const [m, t, p, c] = defaultErrorFor(status, model);
	const headers = { ...(err.headers ?? {}) };
	if (err.retry_after !== undefined) headers['retry-after'] = String(err.retry_after);
	if (err.retry_after_ms !== undefined) headers['retry-after-ms'] = String(err.retry_after_ms);
	if (status === 429) {
		Object.assign(headers, {
			'x-ratelimit-limit-requests': '3', 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': `${err.retry_after ?? 20}s`,
		}, err.headers ?? {});
	}
	if (typeof err.body === 'string') { // raw body, e.g. a proxy's HTML error page
		const b = Buffer.from(err.body);
		res.writeHead(status, baseHeaders({ 'content-type': err.content_type ?? 'text/html', 'content-length': b.length, ...headers }));
		res.end(b);
		return;
	}
	const e = oaiError(err.message ?? m, err.type ?? t, 'param' in err ? err.param : p, 'code' in err ? err.code : c);
	sendJSON(res, status, prof === PROFILES_OPENAI && !err.shape ? e : errorBody(prof, status, e.error, err.shape ?? prof.errors ?? 'openai'), headers);
}

const PROFILES_OPENAI = getProfile('openai');
/** the profile of this request: the turn's "profile", else the current one */
const profileOf = turn => getProfile(turn?.profile ?? profileName);
/** an OpenAI error body {error: {...}} in the provider's shape */
const shaped = (prof, status, body) => (prof === PROFILES_OPENAI ? body : errorBody(prof, status, body.error));

// ---------------------------------------------------------------------------
// chat completions

function computeUsage(body, turn, outText) {
	const u = turn.usage ?? {};
	const prompt = u.prompt_tokens ?? Math.max(1, estTokens(JSON.stringify(body.messages ?? '')) + (body.tools ? estTokens(JSON.stringify(body.tools)) : 0));
	const completion = u.completion_tokens ?? Math.max(1, estTokens(outText));
	return {
		prompt_tokens: prompt,
		completion_tokens: completion,
		total_tokens: u.total_tokens ?? prompt + completion,
		prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0, ...(u.prompt_tokens_details ?? {}) },
		completion_tokens_details: {
			reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0,
			...(u.completion_tokens_details ?? {}),
		},
	};
}

function buildAnswer(body, turn, prof = PROFILES_OPENAI) {
	let content = turn.content;
	const refusal = typeof turn.refusal === 'string' ? turn.refusal : null;
	const ownIds = prof.ids && prof.ids !== 'openai';
	const calls = (Array.isArray(turn.tool_calls) ? turn.tool_calls : []).map((tc, index) => ({
		id: ownIds ? wireId(prof, tc.id ?? null, { name: tc.name ?? tc.function?.name ?? 'unnamed', index }) : tc.id ?? 'call_' + randId(24),
		name: tc.name ?? tc.function?.name ?? 'unnamed',
		arguments: (() => {
			const a = tc.arguments ?? tc.function?.arguments ?? {};
			return typeof a === 'string' ? a : JSON.stringify(a);
		})(),
		arg_chunks: tc.arg_chunks,
	}));
	if (content === undefined) {
		if (calls.length || refusal !== null) content = null;
		else {
			const lastUser = [...(body.messages ?? [])].reverse().find(m => m?.role === 'user');
			content = 'sim: ' + textOf(lastUser?.content);
		}
	}
	if (content !== null) content = String(content);
	const finish = turn.finish_reason ?? (calls.length ? 'tool_calls' : 'stop');
	const outText = (content ?? '') + (refusal ?? '') + calls.map(c => c.name + c.arguments).join('');
	const reasoning = prof.reasoning ? (turn.reasoning ?? prof.reasoning.always ?? null) : null;
	return { content, refusal, calls, finish, usage: computeUsage(body, turn, outText), reasoning };
}

function completionObject(ctx, ans, prof = PROFILES_OPENAI) {
	if (prof !== PROFILES_OPENAI) return profileCompletionObject(ctx, ans, prof);
	const message = { role: 'assistant', content: ans.content };
	if (ans.calls.length) {
		message.tool_calls = ans.calls.map(c => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
	}
	message.refusal = ans.refusal;
	message.annotations = [];
	return {
		id: ctx.id,
		object: 'chat.completion',
		created: ctx.created,
		model: ctx.model,
		choices: [{ index: 0, message, logprobs: null, finish_reason: ans.finish }],
		usage: ans.usage,
		service_tier: 'default',
		system_fingerprint: ctx.fingerprint,
	};
}

// the list of delta objects, in order, for a streamed answer
function streamDeltas(turn, ans) {
	const deltas = [];
	const hasText = ans.content !== null && ans.content !== undefined;
	// content pieces
	let pieces = [];
	if (hasText && ans.content.length) pieces = turn.chunks ? splitN(ans.content, turn.chunks) : splitWords(ans.content);
	let refusalPieces = [];
	if (ans.refusal) refusalPieces = turn.chunks ? splitN(ans.refusal, turn.chunks) : splitWords(ans.refusal);

	// tool call events: per call, a header then argument fragments
	const argChunksDefault = turn.arg_chunks ?? 3;
	const perCall = ans.calls.map((c, index) => {
		const n = c.arg_chunks ?? argChunksDefault;
		if (n === 0 || c.arguments.length === 0) {
			return [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }];
		}
		const evs = [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }];
		for (const frag of splitN(c.arguments, n)) evs.push({ index, function: { arguments: frag } });
		return evs;
	});
	const toolEvents = []; // each element: array of tool_call deltas for one chunk
	if (turn.interleave) {
		const max = Math.max(0, ...perCall.map(e => e.length));
		for (let k = 0; k < max; k++) for (const evs of perCall) if (k < evs.length) toolEvents.push([evs[k]]);
	} else {
		for (const evs of perCall) for (const ev of evs) toolEvents.push([ev]);
	}

	const separateRole = turn.separate_role_chunk === true;
	if (refusalPieces.length) {
		deltas.push({ role: 'assistant', content: null, refusal: '' });
		for (const p of refusalPieces) deltas.push({ refusal: p });
	} else if (hasText || !toolEvents.length || separateRole) {
		deltas.push({ role: 'assistant', content: hasText || !toolEvents.length ? '' : null, refusal: null });
		for (const p of pieces) deltas.push({ content: p });
		for (const ev of toolEvents) deltas.push({ tool_calls: ev });
	} else {
		// tool calls only: the role travels with the first tool call header, as the real API does
		deltas.push({ role: 'assistant', content: null, tool_calls: toolEvents[0], refusal: null });
		for (const ev of toolEvents.slice(1)) deltas.push({ tool_calls: ev });
	}
	return deltas;
}

// ---------------------------------------------------------------------------
// provider dialects (profiles.mjs): the same answer in another provider's wire shape

function profileCompletionObject(ctx, ans, prof) {
	const message = { role: 'assistant', content: ans.content };
	if (ans.reasoning !== null) message[prof.reasoning.field] = ans.reasoning;
	if (ans.calls.length) {
		message.tool_calls = ans.calls.map(c => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
	} else if (prof.empty_tool_calls) {
		message.tool_calls = [];
	}
	if (ans.refusal !== null) message.refusal = ans.refusal;
	return {
		id: ctx.id, object: 'chat.completion', created: ctx.created, model: ctx.model,
		choices: [{ index: 0, message, finish_reason: ans.finish, ...(prof.choice_extra ?? {}) }],
		usage: ans.usage,
		...(prof.completion_extra ?? {}),
	};
}

// the tool_calls delta lists, one per chunk, for a streamed answer under a profile
function profileToolEvents(prof, turn, ans) {
	const st = prof.stream ?? {};
	const mode = st.calls ?? 'openai';
	const idx = i => (st.index === 'omit' ? {} : { index: st.index === 'zero' ? 0 : i });
	const whole = (c, i) => ({ ...idx(i), id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } });
	if (mode === 'one_chunk') return ans.calls.length ? [ans.calls.map(whole)] : [];
	if (mode === 'whole') return ans.calls.map((c, i) => [whole(c, i)]);
	const argChunksDefault = turn.arg_chunks ?? 3;
	const cont = st.cont ?? {};
	const perCall = ans.calls.map((c, i) => {
		const n = c.arg_chunks ?? argChunksDefault;
		if (n === 0 || c.arguments.length === 0) return [whole(c, i)];
		const evs = [{ ...idx(i), id: c.id, type: 'function', function: { name: c.name, arguments: '' } }];
		const more = args => {
			const d = { ...idx(i) };
			if (cont.id !== undefined) d.id = cont.id === 'repeat' ? c.id : cont.id;
			if (cont.type) d.type = 'function';
			d.function = cont.name !== undefined ? { name: cont.name, arguments: args } : { arguments: args };
			return d;
		};
		for (const frag of splitN(c.arguments, n)) evs.push(more(frag));
		if (st.args_null_tail) evs.push(more(null));
		return evs;
	});
	const out = [];
	// a server that numbers every call 0 or omits the index (continuations without an id) streams its calls one
	// after the other: its tool parsers finish a call before the next begins (vLLM's, SGLang's), so
	// interleaved fragments would be ambiguous even to OpenAI's own client; "interleave" is ignored there
	if (turn.interleave && st.index !== 'zero' && st.index !== 'omit') {
		const max = Math.max(0, ...perCall.map(e => e.length));
		for (let k = 0; k < max; k++) for (const evs of perCall) if (k < evs.length) out.push([evs[k]]);
	} else {
		for (const evs of perCall) for (const ev of evs) out.push([ev]);
	}
	return out;
}

/**
 * the SSE events of a streamed answer under a non-OpenAI profile: chunk objects, or {raw} text (comments).
 * Usage follows the profile's convention; the end ([DONE] or not) is left to the caller.
 */
function profileStreamEvents(prof, ctx, body, turn, ans) {
	const st = prof.stream ?? {};
	const extras = st.openai_extras !== false;
	const includeUsage = body.stream_options?.include_usage === true;
	const convention = prof.usage ?? 'openai';
	const head = () => ({
		id: ctx.id, object: 'chat.completion.chunk', created: ctx.created, model: ctx.model,
		...(extras ? { service_tier: 'default', system_fingerprint: ctx.fingerprint } : {}),
		...(st.chunk_extra ?? {}),
	});
	const choice = (delta, finish) => ({ index: 0, delta, ...(extras ? { logprobs: null } : {}), finish_reason: finish, ...(st.choice_extra ?? {}) });
	const field = prof.reasoning?.field;
	const fill = d => (st.nulls ? { role: null, content: null, ...(field ? { [field]: null } : {}), tool_calls: null, ...d } : d);

	const deltas = [];
	const hasText = ans.content !== null && ans.content !== undefined;
	const toolEvents = profileToolEvents(prof, turn, ans);
	deltas.push({ role: 'assistant', content: hasText || !toolEvents.length ? '' : null });
	if (ans.reasoning) for (const p of (turn.chunks ? splitN(ans.reasoning, turn.chunks) : splitWords(ans.reasoning))) deltas.push({ [field]: p });
	if (hasText && ans.content.length) for (const p of (turn.chunks ? splitN(ans.content, turn.chunks) : splitWords(ans.content))) deltas.push({ content: p });
	if (ans.refusal) deltas.push({ refusal: ans.refusal });
	for (const ev of toolEvents) deltas.push({ tool_calls: ev });

	const finishReason = ans.calls.length && st.tool_finish ? st.tool_finish : ans.finish;
	const chunks = deltas.map(d => ({ ...head(), choices: [choice(fill(d), null)] }));
	const fin = { ...head(), choices: [choice({}, finishReason)], ...(st.finish_extra ?? {}) };
	chunks.push(fin);
	const u = ans.usage;
	const brief = { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens };
	switch (convention) {
		case 'openai':
			if (includeUsage) { for (const c of chunks) c.usage = null; chunks.push({ ...head(), choices: [], usage: u }); }
			break;
		case 'every_cumulative':
			chunks.forEach((c, k) => {
				const done = Math.ceil(u.completion_tokens * (k + 1) / chunks.length);
				c.usage = { prompt_tokens: u.prompt_tokens, completion_tokens: done, total_tokens: u.prompt_tokens + done };
			});
			break;
		case 'finish_chunk': fin.usage = brief; break;
		case 'choice': fin.choices[0].usage = brief; break;
		case 'x_groq':
			fin.x_groq = { id: 'req_' + randId(26), usage: brief };
			if (includeUsage) chunks.push({ ...head(), choices: [], usage: brief });
			break;
		case 'trailing_always': chunks.push({ ...head(), choices: [], usage: { ...brief, cost: 0 } }); break;
		default: throw new Error(`profile usage convention '${convention}' unknown`);
	}
	const events = [];
	for (const c of st.comments ?? []) events.push({ raw: `${c}\n\n` });
	if (st.preamble) events.push(st.preamble);
	events.push(...chunks);
	return events;
}

async function streamAnswer(req, res, ctx, body, turn, ans, entry, prof = PROFILES_OPENAI) {
	const includeUsage = body.stream_options?.include_usage === true;
	const obfuscate = opts.obfuscation && body.stream_options?.include_obfuscation !== false && turn.obfuscation !== false;
	const chunkDelay = turn.chunk_delay_ms ?? 0;
	const breakAfter = turn.break_after_chunks;
	const head = () => ({
		id: ctx.id, object: 'chat.completion.chunk', created: ctx.created, model: ctx.model,
		service_tier: 'default', system_fingerprint: ctx.fingerprint,
	});
	const finish = (o) => {
		if (includeUsage && !('usage' in o)) o.usage = null;
		if (obfuscate) o.obfuscation = randId(1 + (crypto.randomBytes(1)[0] % 12));
		return o;
	};
	let events;
	if (prof === PROFILES_OPENAI) {
		events = streamDeltas(turn, ans).map(delta => finish({ ...head(), choices: [{ index: 0, delta, logprobs: null, finish_reason: null }] }));
		events.push(finish({ ...head(), choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: ans.finish }] }));
		if (includeUsage) events.push(finish({ ...head(), choices: [], usage: ans.usage }));
	} else {
		events = profileStreamEvents(prof, ctx, body, turn, ans);
	}

	res.writeHead(200, baseHeaders({ 'content-type': turn.content_type ?? prof.stream?.content_type ?? 'text/event-stream; charset=utf-8', ...(turn.headers ?? {}) }));
	res.flushHeaders();

	let closed = false;
	res.on('close', () => { if (!res.writableFinished) closed = true; });
	const write = (s) => new Promise(resolve => { if (closed) return resolve(); res.write(s, () => resolve()); });
	const writeEvent = async (s) => {
		if (turn.split_events && s.length > 2) {
			// two TCP writes, cut at the middle byte (possibly inside a UTF-8 sequence)
			const b = Buffer.from(s);
			const cut = Math.floor(b.length / 2);
			await write(b.subarray(0, cut));
			await sleep(5);
			await write(b.subarray(cut));
		} else {
			await write(s);
		}
	};

	// one chunk every chunkDelay at fixed times from the first (a model's token rate), the
	// simulator's own lag not added to each interval: with a thousand streams at once, waiting
	// chunkDelay after each write made every stream drift by the event loop's lag per chunk.
	// A write that was held back (a client that reads slowly) is not made up for in a burst.
	let due = Date.now();
	const pace = () => {
		due = Math.max(due + chunkDelay, Date.now());
		return sleep(due - Date.now());
	};
	let written = 0;
	const streamErr = turn.stream_error;
	for (const ev of events) {
		if (closed) break;
		if (breakAfter !== undefined && written >= breakAfter) {
			entry.broken = true;
			res.socket?.destroy();
			return;
		}
		if (streamErr && written >= (streamErr.after_chunks ?? 1)) {
			const [m, t] = defaultErrorFor(500, ctx.model);
			await writeEvent(`data: ${JSON.stringify(shaped(prof, 500, oaiError(streamErr.message ?? m, streamErr.type ?? t, streamErr.param ?? null, streamErr.code ?? null)))}\n\n`);
			res.end();
			return;
		}
		if (written > 0 && chunkDelay > 0) await pace();
		if (closed) break;
		await writeEvent(ev.raw !== undefined ? ev.raw : `data: ${JSON.stringify(ev)}\n\n`);
		if (ev.raw === undefined) written++; // chunks count (break_after_chunks, after_chunks), comments do not
	}
	if (closed) { entry.aborted = true; entry.chunks_sent = written; return; }
	if (breakAfter !== undefined && written >= breakAfter) { entry.broken = true; res.socket?.destroy(); return; }
	if (chunkDelay > 0) await pace();
	if (turn.omit_done || prof.stream?.done === false) { res.end(); entry.chunks_sent = written; return; }
	await writeEvent('data: [DONE]\n\n');
	res.end();
	entry.chunks_sent = written;
}

async function handleChat(req, res, entry, query = new URLSearchParams()) {
	// Azure: the deployment in the path names the model when the body does not
	const body = entry.deployment && entry.body && typeof entry.body === 'object' && !Array.isArray(entry.body) && entry.body.model === undefined
		? { ...entry.body, model: entry.deployment } : entry.body;
	if (body === null || typeof body !== 'object' || Array.isArray(body)) {
		return finishWith(entry, res, 400, oaiError("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)", 'invalid_request_error'));
	}
	const idx = pickTurn('chat', entry.raw ?? JSON.stringify(body));
	const peek = idx >= 0 ? queue[idx] : autoTurn(body);
	const prof = profileOf(peek);
	if (opts.validate && peek?.validate !== false) {
		const v = validateChat(body);
		if (v) { vlog(`400 on request ${entry.seq}: ${v.body.error.message}`); return finishWith(entry, res, v.status, shaped(prof, v.status, v.body)); }
		if (!knownModel(body.model) && !peek?.any_model && prof.request?.path !== 'azure') {
			const [m, t, p, c] = defaultErrorFor(404, body.model);
			return finishWith(entry, res, 404, shaped(prof, 404, oaiError(m, t, p, c)));
		}
		const pv = prof === PROFILES_OPENAI ? null : checkRequest(prof, body, query);
		if (pv) {
			vlog(`${pv.status} on request ${entry.seq} (profile rule): ${pv.error?.message ?? pv.raw}`);
			entry.status = pv.status;
			if (pv.raw !== undefined) {
				const b = Buffer.from(pv.raw);
				res.writeHead(pv.status, baseHeaders({ 'content-type': pv.content_type, 'content-length': b.length }));
				return void res.end(b);
			}
			return sendJSON(res, pv.status, errorBody(prof, pv.status, pv.error));
		}
	}
	const turn = withDefaults(idx >= 0 ? queue.splice(idx, 1)[0] : (peek ?? {}));
	entry.turn = idx >= 0 ? turn : null;
	if (idx < 0 && peek) entry.auto = true;
	checkExpect(entry, turn);

	if (turn.drop) { entry.status = 0; entry.dropped = true; req.socket.destroy(); return; }
	if (turn.delay_ms && await delayOrGone(req, turn.delay_ms)) { entry.aborted = true; return; }
	const model = turn.model ?? (typeof body.model === 'string' ? body.model : 'sim-model');
	if (turn.error) {
		entry.status = turn.error.status ?? 500;
		return sendTurnError(res, turn.error, model, prof);
	}
	const stream = body.stream === true;
	if (turn.garbage !== undefined) {
		entry.status = 200;
		const g = String(turn.garbage);
		const text = turn.raw ? g : stream ? `data: ${g}\n\ndata: [DONE]\n\n` : g;
		const b = Buffer.from(text);
		res.writeHead(200, baseHeaders({ 'content-type': stream ? 'text/event-stream; charset=utf-8' : 'application/json', 'content-length': b.length }));
		res.end(b);
		return;
	}
	const ctx = {
		id: turn.id ?? 'chatcmpl-' + randId(29),
		created: Math.floor(Date.now() / 1000),
		model,
		fingerprint: turn.system_fingerprint ?? FINGERPRINT,
	};
	const ans = buildAnswer(body, turn, prof);
	entry.status = 200;
	if (stream) return streamAnswer(req, res, ctx, body, turn, ans, entry, prof);

	const buf = Buffer.from(JSON.stringify(completionObject(ctx, ans, prof)));
	if (turn.break_after_chunks !== undefined) { // half a body, then the connection dies
		res.writeHead(200, baseHeaders({ 'content-type': 'application/json', 'content-length': buf.length }));
		res.write(buf.subarray(0, Math.floor(buf.length / 2)), () => { entry.broken = true; res.socket?.destroy(); });
		return;
	}
	res.writeHead(200, baseHeaders({ 'content-type': 'application/json', 'content-length': buf.length, ...(turn.headers ?? {}) }));
	res.end(buf);
}

// ---------------------------------------------------------------------------
// embeddings

function embedVector(model, text, dims) {
	const seed = crypto.createHash('sha256').update(model + '\0' + text).digest();
	const v = new Float64Array(dims);
	let block = 0;
	for (let i = 0; i < dims; i += 8) {
		const h = crypto.createHash('sha256').update(seed).update(String(block++)).digest();
		for (let j = 0; j < 8 && i + j < dims; j++) v[i + j] = h.readUInt32LE(j * 4) / 0x100000000 * 2 - 1;
	}
	let norm = 0;
	for (const x of v) norm += x * x;
	norm = Math.sqrt(norm) || 1;
	return Array.from(v, x => Math.fround(x / norm));
}

async function handleEmbeddings(req, res, entry) {
	const body = entry.body;
	if (body === null || typeof body !== 'object' || Array.isArray(body)) {
		return finishWith(entry, res, 400, oaiError('We could not parse the JSON body of your request.', 'invalid_request_error'));
	}
	const idx = pickTurn('embeddings', entry.raw ?? JSON.stringify(body));
	const turn = idx >= 0 ? queue.splice(idx, 1)[0] : {};
	entry.turn = idx >= 0 ? turn : null;
	if (idx >= 0) checkExpect(entry, turn);
	if (turn.drop) { entry.dropped = true; req.socket.destroy(); return; }
	if (turn.delay_ms && await delayOrGone(req, turn.delay_ms)) { entry.aborted = true; return; }
	if (turn.error) { entry.status = turn.error.status ?? 500; return sendTurnError(res, turn.error, body.model); }

	if (body.model === undefined) return finishWith(entry, res, 400, oaiError('you must provide a model parameter', 'invalid_request_error'));
	if (body.input === undefined) return finishWith(entry, res, 400, oaiError("Missing required parameter: 'input'.", 'invalid_request_error', 'input', 'missing_required_parameter'));
	if (!knownModel(body.model)) {
		const [m, t, p, c] = defaultErrorFor(404, body.model);
		return finishWith(entry, res, 404, oaiError(m, t, p, c));
	}
	let inputs;
	const inp = body.input;
	if (typeof inp === 'string') inputs = [inp];
	else if (Array.isArray(inp) && inp.length && inp.every(x => typeof x === 'number')) inputs = [inp];
	else if (Array.isArray(inp) && inp.length && inp.every(x => typeof x === 'string' || (Array.isArray(x) && x.every(y => typeof y === 'number')))) inputs = inp;
	else return finishWith(entry, res, 400, oaiError("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", 'invalid_request_error'));
	if (inputs.some(x => x.length === 0)) {
		return finishWith(entry, res, 400, oaiError("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", 'invalid_request_error'));
	}
	const full = EMBED_DIMS[body.model] ?? 1536;
	let dims = full;
	if (body.dimensions !== undefined && body.dimensions !== null) {
		if (body.model === 'text-embedding-ada-002') {
			return finishWith(entry, res, 400, oaiError('This model does not support specifying dimensions.', 'invalid_request_error'));
		}
		if (!Number.isInteger(body.dimensions) || body.dimensions < 1 || body.dimensions > full) {
			return finishWith(entry, res, 400, oaiError(`Invalid value for 'dimensions' = ${body.dimensions}. Must be between 1 and ${full}.`, 'invalid_request_error', 'dimensions'));
		}
		dims = body.dimensions;
	}
	const fmt = body.encoding_format ?? 'float';
	if (fmt !== 'float' && fmt !== 'base64') {
		return finishWith(entry, res, 400, oaiError(`Invalid value: '${fmt}'. Supported values are: 'float' and 'base64'.`, 'invalid_request_error', 'encoding_format', 'invalid_value'));
	}
	let tokens = 0;
	const data = inputs.map((x, index) => {
		const text = typeof x === 'string' ? x : JSON.stringify(x);
		tokens += typeof x === 'string' ? estTokens(x) : x.length;
		const vec = embedVector(body.model, text, dims);
		let embedding = vec;
		if (fmt === 'base64') {
			const b = Buffer.alloc(dims * 4);
			vec.forEach((f, i) => b.writeFloatLE(f, i * 4));
			embedding = b.toString('base64');
		}
		return { object: 'embedding', index, embedding };
	});
	return finishWith(entry, res, 200, { object: 'list', data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
}

// ---------------------------------------------------------------------------
// routing

function finishWith(entry, res, status, obj, headers) {
	if (entry) entry.status = status;
	sendJSON(res, status, obj, headers);
}

function readBody(req) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		let size = 0;
		req.on('data', c => {
			size += c.length;
			if (size > 64 * 1024 * 1024) { reject(new Error('body too large')); req.destroy(); return; }
			chunks.push(c);
		});
		req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
		req.on('error', reject);
	});
}

function authOk(req, prof = PROFILES_OPENAI) {
	if (!opts.apiKey) return true;
	if (prof.request?.auth === 'api-key') return req.headers['api-key'] === opts.apiKey;
	return req.headers.authorization === `Bearer ${opts.apiKey}`;
}

// Azure OpenAI's answers to a wrong key and to a path or api-version it does not serve
// (https://learn.microsoft.com/en-us/azure/ai-services/openai/reference)
const AZURE_401 = { error: { code: '401', message: 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.' } };
const AZURE_404 = { error: { code: '404', message: 'Resource not found' } };

async function handleControl(req, res, url, raw) {
	const p = url.pathname;
	const parse = () => { try { return JSON.parse(raw); } catch (e) { throw new Error(`invalid JSON: ${e.message}`); } };
	try {
		if (req.method === 'POST' && p === '/_sim/script') {
			queue = turnsFrom(parse());
			return sendJSON(res, 200, { ok: true, queued: queue.length });
		}
		if (req.method === 'POST' && p === '/_sim/append') {
			queue.push(...turnsFrom(parse()));
			return sendJSON(res, 200, { ok: true, queued: queue.length });
		}
		if (req.method === 'GET' && p === '/_sim/script') return sendJSON(res, 200, { queued: queue.length, turns: queue });
		if (req.method === 'GET' && p === '/_sim/requests') {
			const since = Number(url.searchParams.get('since') ?? 0);
			const path = url.searchParams.get('path');
			return sendJSON(res, 200, log.filter(e => e.seq > since && (!path || e.path === path)));
		}
		if (req.method === 'POST' && p === '/_sim/reset') {
			queue = []; log = []; expectFailures = []; expectChecked = 0; apiConns.clear();
			return sendJSON(res, 200, { ok: true });
		}
		if (req.method === 'GET' && p === '/_sim/stats') {
			return sendJSON(res, 200, {
				connections: apiConns.size, requests: log.length,
				all_connections: allConns, open_connections: openConns, queued: queue.length,
			});
		}
		if (req.method === 'POST' && p === '/_sim/profile') {
			const j = parse();
			const name = typeof j === 'string' ? j : j?.profile;
			getProfile(name);
			profileName = name;
			return sendJSON(res, 200, { ok: true, profile: profileName });
		}
		if (req.method === 'GET' && p === '/_sim/profile') {
			return sendJSON(res, 200, { profile: profileName, title: getProfile(profileName).title, profiles: PROFILE_NAMES });
		}
		if (req.method === 'GET' && p === '/_sim/expectations') {
			return sendJSON(res, 200, { ok: expectFailures.length === 0, checked: expectChecked, failures: expectFailures });
		}
		return sendJSON(res, 404, { error: `no control endpoint ${req.method} ${p}` });
	} catch (e) {
		return sendJSON(res, 400, { error: e.message });
	}
}

async function handle(req, res) {
	const url = new URL(req.url, 'http://127.0.0.1');
	let raw;
	try {
		raw = await readBody(req);
	} catch (e) {
		return sendJSON(res, 413, oaiError(e.message, 'invalid_request_error'));
	}
	if (url.pathname.startsWith('/_sim/')) return handleControl(req, res, url, raw);

	const connId = req.socket._simId;
	apiConns.add(connId);
	let body = null;
	let isJSON = false;
	if (raw.length) { try { body = JSON.parse(raw); isJSON = true; } catch { /* keep raw */ } }
	const entry = {
		seq: ++seq, time: new Date().toISOString(), method: req.method, path: url.pathname,
		query: url.search || undefined, connection: connId, headers: { ...req.headers },
		body: isJSON ? body : null, raw: isJSON || !raw.length ? undefined : raw, status: null,
	};
	log.push(entry);
	vlog(`${req.method} ${url.pathname} #${entry.seq} conn ${connId}`);

	const prof = profileOf(null);
	const azure = prof.request?.path === 'azure';
	// Azure's v1 API (/openai/v1/..., the model in the body, no api-version) and its model list
	// (/openai/models?api-version=...): served as their /v1 twins below, after the api-key check
	// (https://learn.microsoft.com/en-us/azure/ai-foundry/openai/api-version-lifecycle)
	const azureV1 = azure && (/^\/openai\/v1\//.test(url.pathname) ||
		(/^\/openai\/models\/?$/.test(url.pathname) && url.searchParams.get('api-version')));
	if (azureV1 && !authOk(req, prof)) return finishWith(entry, res, 401, AZURE_401);
	if (azure && !azureV1) {
		// /openai/deployments/{deployment}/chat/completions?api-version=...: the deployment is the model
		const ma = url.pathname.match(/^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)\/?$/);
		if (!ma || !url.searchParams.get('api-version')) return finishWith(entry, res, 404, AZURE_404);
		if (!authOk(req, prof)) return finishWith(entry, res, 401, AZURE_401);
		if (req.method !== 'POST') return finishWith(entry, res, 405, AZURE_404);
		entry.deployment = decodeURIComponent(ma[1]);
		return ma[2] === 'embeddings' ? handleEmbeddings(req, res, entry) : handleChat(req, res, entry, url.searchParams);
	}
	if (!azureV1 && !authOk(req)) {
		const h = req.headers.authorization;
		if (!h) {
			return finishWith(entry, res, 401, oaiError("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.", 'invalid_request_error', null, null));
		}
		const given = h.replace(/^Bearer\s+/i, '');
		const masked = given.length > 8 ? `${given.slice(0, 3)}*****${given.slice(-4)}` : '****';
		return finishWith(entry, res, 401, oaiError(`Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`, 'invalid_request_error', null, 'invalid_api_key'));
	}

	// Azure OpenAI's paths are served as their /v1 twins: /openai/deployments/NAME/chat/completions
	// (and /completions, /embeddings), /openai/v1/..., /openai/models; the log keeps the path as sent
	const p = url.pathname.replace(/\/+$/, '')
		.replace(/^\/openai\/deployments\/[^/]+(?=\/(chat\/completions|completions|embeddings)$)/, '/v1')
		.replace(/^\/openai\/(v1\/)?(?=[a-z])/, '/v1/');
	if (p === '/v1/chat/completions') {
		if (req.method !== 'POST') return finishWith(entry, res, 405, oaiError(`Invalid method for URL (${req.method} ${url.pathname})`, 'invalid_request_error'));
		return handleChat(req, res, entry);
	}
	if (p === '/v1/embeddings') {
		if (req.method !== 'POST') return finishWith(entry, res, 405, oaiError(`Invalid method for URL (${req.method} ${url.pathname})`, 'invalid_request_error'));
		return handleEmbeddings(req, res, entry);
	}
	if (p === '/v1/models' && req.method === 'GET') {
		// --models-delay-ms: a slow listing, so that requests overlap with a fetch
		if (opts.modelsDelayMs) return void setTimeout(() => finishWith(entry, res, 200, { object: 'list', data: MODELS }), opts.modelsDelayMs);
		return finishWith(entry, res, 200, { object: 'list', data: MODELS });
	}
	const mm = p.match(/^\/v1\/models\/(.+)$/);
	if (mm && req.method === 'GET') {
		const id = decodeURIComponent(mm[1]);
		const m = MODELS.find(x => x.id === id);
		if (m) return finishWith(entry, res, 200, m);
		return finishWith(entry, res, 404, oaiError(`The model '${id}' does not exist`, 'invalid_request_error', 'model', 'model_not_found'));
	}
	return finishWith(entry, res, 404, oaiError(`Invalid URL (${req.method} ${url.pathname})`, 'invalid_request_error'));
}

// ---------------------------------------------------------------------------

const server = http.createServer({ keepAliveTimeout: opts.keepAliveMs, requestTimeout: 0 }, (req, res) => {
	handle(req, res).catch(e => {
		process.stderr.write(`sim: internal error: ${e.stack}\n`);
		if (!res.headersSent) sendJSON(res, 500, oaiError(`simulator bug: ${e.message}`, 'server_error'));
		else res.destroy();
	});
});
server.on('connection', sock => {
	sock._simId = ++connSeq;
	allConns++;
	openConns++;
	sock.on('close', () => { openConns--; });
});
server.on('clientError', (err, sock) => { if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n'); });
server.on('error', e => { process.stderr.write(`sim: ${e.message}\n`); process.exit(1); });
server.listen(opts.port, '127.0.0.1', () => {
	process.stdout.write(`LISTENING ${server.address().port}\n`);
});

const stop = () => { server.close(); server.closeAllConnections?.(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
