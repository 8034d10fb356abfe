// canaries.mjs: the run's canary secrets (tests/canaries.sh) planted in every gateway the black-box suites start, and what they kept for the end-of-run grep.
//
// The canaries come from $MCPGW_TEST_ARTIFACTS/canaries (tests/check.sh makes it with `tests/canaries.sh init`);
// without MCPGW_TEST_ARTIFACTS they are made here for this process, planted all the same and kept nowhere.
// Channels: dotenv (a secret in the .env), srvenv (a stdio server's own "env"), urlquery (?api_key= of a remote
// server's URL), stderr (a DSN's password a stdio server writes to its stderr, by stderr-canary.sh),
// cookie and authorization (client request headers), upstreamkey (OPENAI_API_KEY).
//
//   node canaries.mjs plant HOME      add the canaries to HOME/.env and HOME/servers_config.json
//   node canaries.mjs keep HOME TAG   copy HOME's raw inputs to DIR/raw/TAG and every other file, gzip'ed, to DIR/kept/TAG
//   node canaries.mjs get CHANNEL     print one canary
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** the wrapper that writes the stderr canary before it execs the real server */
export const STDERR_WRAPPER = path.join(HERE, 'stderr-canary.sh');
/** the files of a gateway home a canary is planted in (copied to raw/, never grepped as output) */
export const RAW_INPUTS = ['.env', 'servers_config.json'];
const CHANNELS = ['dotenv', 'srvenv', 'urlquery', 'stderr', 'cookie', 'authorization', 'upstreamkey'];

/** the artifacts directory of the run (MCPGW_TEST_ARTIFACTS) or null */
export const ARTIFACTS = process.env.MCPGW_TEST_ARTIFACTS || null;

let cached = null;
/** canaries(): {prefix, dotenv, srvenv, ...}: the run's (ARTIFACTS/canaries) or this process's own */
export function canaries() {
	if (cached) return cached;
	const file = ARTIFACTS && path.join(ARTIFACTS, 'canaries');
	if (file && fs.existsSync(file)) {
		cached = Object.fromEntries(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(l => l.split(' ')));
	} else {
		const prefix = `k${randomBytes(5).toString('hex')}`;
		cached = { prefix };
		for (const c of CHANNELS) cached[c] = prefix + randomBytes(8).toString('hex');
	}
	return cached;
}

/** plantServers(servers): the mcpServers object with the canaries planted: a remote server's URL gets
 * ?api_key=URLQUERY (access_token= when it has an api_key already); the bundled SQLite server runs behind
 * stderr-canary.sh (its DSN with the STDERR password on stderr) with SRVENV in its own env */
export function plantServers(servers) {
	const c = canaries();
	const out = {};
	for (const [name, s0] of Object.entries(servers)) {
		const s = { ...s0 };
		if (typeof s.url === 'string') {
			const hash = s.url.indexOf('#');
			const base = hash >= 0 ? s.url.slice(0, hash) : s.url;
			const name = /[?&]api_key=/.test(base) ? 'access_token' : 'api_key';
			s.url = `${base}${base.includes('?') ? '&' : '?'}${name}=${c.urlquery}${hash >= 0 ? s.url.slice(hash) : ''}`;
		}
		if (typeof s.command === 'string' && /\/mcp-server-sqlite$/.test(s.command)) {
			s.env = { ...(s.env || {}), MCPGW_TEST_SERVER_SECRET: c.srvenv, MCPGW_TEST_DSN_PASSWORD: c.stderr };
			s.args = [s.command, ...(s.args || [])];
			s.command = STDERR_WRAPPER;
		}
		out[name] = s;
	}
	return out;
}

/** dotenvLines(): the .env lines of the dotenv canary */
export function dotenvLines() {
	return `MCPGW_TEST_DOTENV_SECRET=${canaries().dotenv}\n`;
}

/** plantHome(home): the canaries added to home/.env and home/servers_config.json (a config that is not
 * a JSON object with mcpServers, a test's deliberate mistake, is left as it is) */
export function plantHome(home) {
	const env = path.join(home, '.env');
	if (fs.existsSync(env)) fs.appendFileSync(env, dotenvLines());
	const cfg = path.join(home, 'servers_config.json');
	let j;
	try { j = JSON.parse(fs.readFileSync(cfg, 'utf8')); } catch { return; }
	if (!j || typeof j.mcpServers !== 'object' || Array.isArray(j.mcpServers) || !j.mcpServers) return;
	j.mcpServers = plantServers(j.mcpServers);
	fs.writeFileSync(cfg, `${asWritten(j, '')}\n`);
}

/** asWritten(v, indent): v as JSON the way configs are written by hand (and tests edit them with sed):
 * objects one member a line, arrays of scalars on one line ("excludeTools": ["a", "b"]) */
function asWritten(v, indent) {
	const inner = `${indent}  `;
	if (Array.isArray(v)) {
		if (v.every(x => x === null || typeof x !== 'object')) return `[${v.map(x => JSON.stringify(x)).join(', ')}]`;
		return v.length ? `[\n${v.map(x => inner + asWritten(x, inner)).join(',\n')}\n${indent}]` : '[]';
	}
	if (v && typeof v === 'object') {
		const e = Object.entries(v);
		return e.length ? `{\n${e.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${asWritten(x, inner)}`).join(',\n')}\n${indent}}` : '{}';
	}
	return JSON.stringify(v);
}

/** keep(home, tag): with ARTIFACTS, home's raw inputs copied to ARTIFACTS/raw/TAG, every other regular
 * file (logs, state databases and their -wal, generated configs) gzip'ed to ARTIFACTS/kept/TAG/FILE.gz */
export function keep(home, tag) {
	if (!ARTIFACTS || !fs.existsSync(home)) return;
	const raw = path.join(ARTIFACTS, 'raw', tag), kept = path.join(ARTIFACTS, 'kept', tag);
	const walk = (dir, rel) => {
		let names = [];
		try { names = fs.readdirSync(dir); } catch { return; }
		for (const n of names) {
			const p = path.join(dir, n), r = path.join(rel, n);
			let st;
			try { st = fs.lstatSync(p); } catch { continue; }
			if (st.isDirectory()) walk(p, r);
			else if (!st.isFile()) continue;
			else if (rel === '' && RAW_INPUTS.includes(n)) {
				fs.mkdirSync(raw, { recursive: true });
				fs.copyFileSync(p, path.join(raw, n));
			} else {
				fs.mkdirSync(path.dirname(path.join(kept, r)), { recursive: true });
				try { fs.writeFileSync(path.join(kept, `${r}.gz`), zlib.gzipSync(fs.readFileSync(p), { level: 6 })); } catch { /* unreadable: gone */ }
			}
		}
	};
	walk(home, '');
}

/** keepRaw(tag, text): a raw input that is no file of a home (the request headers as planted) */
export function keepRaw(tag, text) {
	if (!ARTIFACTS) return;
	fs.mkdirSync(path.join(ARTIFACTS, 'raw'), { recursive: true });
	fs.writeFileSync(path.join(ARTIFACTS, 'raw', tag), text);
}

// ---------------------------------------------------------------------------
// every client request to a gateway: the cookie canary, the authorization canary where no key is
// configured; every response kept

const gateways = new Map(); // url prefix -> {keyless}
let seq = 0;

/** gatewayStarted(url, keyless) / gatewayStopped(url): requests to url get the header canaries
 * (Authorization only when keyless: no key configured, the client's key means nothing) */
export function gatewayStarted(url, keyless) { gateways.set(`${url}/`, { keyless }); }
export function gatewayStopped(url) { gateways.delete(`${url}/`); }

const realFetch = globalThis.fetch;
let rawWritten = false;

async function canaryFetch(input, init) {
	const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input?.url;
	const gw = typeof url === 'string' && [...gateways].find(([p]) => url.startsWith(p) || `${url}/` === p);
	if (!gw) return realFetch(input, init);
	const c = canaries();
	const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
	const cookie = `mcpgw_session=${c.cookie}`;
	headers.set('cookie', headers.has('cookie') ? `${headers.get('cookie')}; ${cookie}` : cookie);
	if (gw[1].keyless) headers.set('authorization', `Bearer ${c.authorization}`);
	if (!rawWritten) {
		rawWritten = true;
		keepRaw(`node-request-headers-${process.pid}`, `Cookie: ${headers.get('cookie')}\nAuthorization: ${headers.get('authorization')}\n`);
	}
	const req = input instanceof Request ? new Request(input, { ...init, headers }) : input;
	const res = await realFetch(req, input instanceof Request ? undefined : { ...init, headers });
	if (!ARTIFACTS) return res;
	const file = path.join(ARTIFACTS, 'kept', 'responses', `node-${process.pid}-${++seq}.txt`);
	const head = `${init?.method || (input instanceof Request ? input.method : 'GET')} ${url}\n${res.status}\n` +
		[...res.headers].map(([k, v]) => `${k}: ${v}\n`).join('') + '\n';
	try { fs.writeFileSync(file, head); } catch { return res; }
	if (!res.body) return res;
	// the body as the client reads it (a client that stops reading cancels the gateway's stream as before)
	const tap = new TransformStream({
		transform(chunk, ctl) {
			try { fs.appendFileSync(file, chunk); } catch { /* the check finds what was written */ }
			ctl.enqueue(chunk);
		},
	});
	const out = new Response(res.body.pipeThrough(tap), { status: res.status, statusText: res.statusText, headers: res.headers });
	Object.defineProperty(out, 'url', { value: res.url });
	return out;
}

if (!globalThis.fetch.mcpgwCanaries) {
	canaryFetch.mcpgwCanaries = true;
	globalThis.fetch = canaryFetch;
}

// the CLI of helpers.bash
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
	const [cmd, a, b] = process.argv.slice(2);
	if (cmd === 'plant' && a) plantHome(a);
	else if (cmd === 'keep' && a && b) keep(a, b);
	else if (cmd === 'get' && a && canaries()[a]) console.log(canaries()[a]);
	else {
		console.error('usage: canaries.mjs plant HOME | keep HOME TAG | get CHANNEL');
		process.exit(2);
	}
}
