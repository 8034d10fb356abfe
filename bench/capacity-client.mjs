#!/usr/bin/env node
// capacity-client.mjs: bench/capacity.sh's load client: N streamed chat completions started at
// once, each on a connection of its own held open until its stream ends, and the private memory of
// the gateway's processes sampled meanwhile.
//
//   node bench/capacity-client.mjs --url URL --body FILE --n N [--timeout-s 120] [--expect TEXT]
//        [--then-body FILE2] [--lighttpd-pid PID --broker-pid PID] [--sample-ms 100]
//
// Every request is POSTed at once (node's http module, an agent with no socket limit and no
// keep-alive: one TCP connection per stream). A stream is complete when its status is 200, it
// ends with `data: [DONE]`, carries no `data: {"error": ...}` event, and its content deltas add up
// to TEXT (--expect; any non-empty text without it). Times are from the moment that request was
// started: the end of the stream, and its first content delta (the first chunk whose
// choices[0].delta.content is not empty). Streams not ended --timeout-s after the start are cut
// and counted as unfinished (those that had no byte of an answer by then are counted apart).
//
// --then-body FILE2 (the yardstick of what the load and the simulator cost by themselves): each
// stream is two exchanges, as the gateway has them with the upstream for one tool round: BODY
// first, whose stream must end with [DONE] (its deltas are the tool call, not content), then at
// once FILE2 (the conversation with the tool's result) on a new connection, judged as above. A
// stream's times run from the first exchange's start to the second's end and first content delta.
//
// Memory (with --lighttpd-pid and --broker-pid): the private memory (Private_Clean +
// Private_Dirty of /proc/PID/smaps_rollup) of the broker plus every chat.fcgi child of lighttpd,
// summed; once before the first request (idle) and every --sample-ms until the last stream ended
// (peak). The children are looked up again at every sample (lighttpd starts a second process under
// load, and stops an idle one): mem_spawned_kb is the part of the peak that is the chat.fcgi
// processes of the peak sample the idle sample did not have, each counted at what an idle chat.fcgi
// holds (or at its first sample, when less): the cost of a process, not of the streams it serves.
// Also every --sample-ms: how many streams are being answered (a status line came, the stream has
// not ended); the most at once is served_peak.
//
// Prints KEY=VALUE lines on stdout (read by bench/capacity.sh), notes on stderr. Exit status 0
// when it ran (whatever the streams did), 2 on a usage error.

import http from 'node:http';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

function usage(msg) {
	process.stderr.write(`capacity-client: ${msg}\nusage: capacity-client.mjs --url URL --body FILE --n N [--timeout-s S] [--expect TEXT] [--then-body FILE2] [--lighttpd-pid PID --broker-pid PID] [--sample-ms MS]\n`);
	process.exit(2);
}

const opts = { url: null, body: null, thenBody: null, n: 0, timeoutS: 120, expect: null, lighttpdPid: 0, brokerPid: 0, sampleMs: 100 };
{
	const argv = process.argv.slice(2);
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const val = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
		switch (a) {
			case '--url': opts.url = val(); break;
			case '--body': opts.body = val(); break;
			case '--then-body': opts.thenBody = val(); break;
			case '--n': opts.n = Number(val()); break;
			case '--timeout-s': opts.timeoutS = Number(val()); break;
			case '--expect': opts.expect = val(); break;
			case '--lighttpd-pid': opts.lighttpdPid = Number(val()); break;
			case '--broker-pid': opts.brokerPid = Number(val()); break;
			case '--sample-ms': opts.sampleMs = Number(val()); break;
			default: usage(`unknown argument ${a}`);
		}
	}
	if (!opts.url || !opts.body) usage('--url and --body are needed');
	if (!Number.isInteger(opts.n) || opts.n < 1 || opts.n > 100000) usage('--n: expected 1..100000');
	if (!(opts.timeoutS > 0)) usage('--timeout-s: expected seconds > 0');
	if (!(opts.sampleMs >= 10)) usage('--sample-ms: expected >= 10');
}

const body = fs.readFileSync(opts.body);
const thenBody = opts.thenBody ? fs.readFileSync(opts.thenBody) : null;
const url = new URL(opts.url);

// --- memory ------------------------------------------------------------------------------------

// the private KB of one process (smaps_rollup), or null when it is gone
function privateKb(pid) {
	let s;
	try { s = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'); } catch { return null; }
	let kb = 0;
	for (const m of s.matchAll(/^Private_(?:Clean|Dirty):\s+(\d+) kB$/gm)) kb += Number(m[1]);
	return kb;
}
// the pids of lighttpd's children named chat.fcgi: from /proc/PID/task/PID/children (cheap enough
// for every sample), else from a scan of /proc (once a second)
let haveChildren = true;
function chatPids() {
	const out = [];
	let ents;
	if (haveChildren) {
		try {
			ents = fs.readFileSync(`/proc/${opts.lighttpdPid}/task/${opts.lighttpdPid}/children`, 'utf8').split(' ').filter(Boolean);
		} catch { haveChildren = false; }
	}
	if (!haveChildren) {
		try { ents = fs.readdirSync('/proc'); } catch { return out; }
	}
	for (const e of ents) {
		if (!/^\d+$/.test(e)) continue;
		let st;
		try { st = fs.readFileSync(`/proc/${e}/stat`, 'utf8'); } catch { continue; }
		const close = st.lastIndexOf(')');
		const comm = st.slice(st.indexOf('(') + 1, close);
		const ppid = Number(st.slice(close + 2).split(' ')[1]);
		if (ppid === opts.lighttpdPid && comm === 'chat.fcgi') out.push(Number(e));
	}
	return out;
}
const memOn = opts.lighttpdPid > 0 && opts.brokerPid > 0;
let pids = [];
let pidsAt = -Infinity;
const firstKb = new Map(); // chat.fcgi pid -> its private KB when first seen
let idlePids = null;       // the chat.fcgi pids of the idle sample
let idleChatKb = null;     // the private KB of one of them (the largest)
function sampleMem() {
	const now = performance.now();
	if (haveChildren || now - pidsAt >= 1000) { pids = chatPids(); pidsAt = now; }
	let kb = privateKb(opts.brokerPid) ?? 0, spawned = 0;
	for (const p of pids) {
		const k = privateKb(p);
		if (k === null) continue; // gone since the last look-up
		if (!firstKb.has(p)) firstKb.set(p, k);
		// a process started meanwhile: its own cost, what an idle one holds (or less, as first seen)
		if (idlePids && !idlePids.has(p)) spawned += Math.min(firstKb.get(p), idleChatKb ?? firstKb.get(p));
		kb += k;
	}
	return { kb, procs: pids.length, spawned };
}

// --- the streams -------------------------------------------------------------------------------

const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity, maxTotalSockets: Infinity });
const streams = [];
let open = 0;
let idle = null, peak = null, peakProcs = 0, peakSpawned = 0, samples = 0;
let servedPeak = 0; // the most streams answering at once (a status line came, the stream not ended)
let sampler = null, deadline = null;
let tStart = 0, tLast = 0;

function finish(s, how) {
	if (s.how) return;
	s.how = how;
	s.tEnd = performance.now() - s.t0;
	if (how !== 'unfinished') tLast = Math.max(tLast, performance.now() - tStart);
	if (--open === 0) done();
}

function start(i) {
	const s = { i, t0: performance.now(), status: 0, gotByte: false, tFirst: null, tEnd: null, text: '', doneSeen: false, errEvent: null, how: null, err: null };
	streams.push(s);
	open++;
	exchange(s, body, !thenBody);
}

// exchange: one request of stream s (last: the one its answer is judged by; else, once its stream
// ended with [DONE], the second one, thenBody, follows)
function exchange(s, reqBody, last) {
	const req = http.request({
		host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'POST', agent,
		headers: { 'Content-Type': 'application/json', 'Content-Length': reqBody.length, Accept: 'text/event-stream' },
	}, res => {
		s.status = res.statusCode;
		s.gotByte = true;
		s.retryAfter = res.headers['retry-after'] ?? null;
		let buf = '', ended = false;
		res.setEncoding('utf8');
		res.on('data', d => {
			if (s.status !== 200) { if (buf.length < 4096) buf += d; return; }
			buf += d;
			let k;
			while ((k = buf.indexOf('\n\n')) >= 0) {
				const ev = buf.slice(0, k);
				buf = buf.slice(k + 2);
				for (const line of ev.split('\n')) {
					if (!line.startsWith('data: ')) continue; // comments (": mcpgw: tool ... running", keep-alive)
					const p = line.slice(6);
					if (p === '[DONE]') { s.doneSeen = true; continue; }
					let o;
					try { o = JSON.parse(p); } catch { s.errEvent = s.errEvent ?? 'unparsable chunk'; continue; }
					if (o.error) { s.errEvent = s.errEvent ?? (o.error.code ?? o.error.type ?? 'error'); continue; }
					const c = o.choices?.[0]?.delta?.content;
					if (last && typeof c === 'string' && c.length) {
						if (s.tFirst === null) s.tFirst = performance.now() - s.t0;
						s.text += c;
					}
				}
			}
		});
		res.on('end', () => {
			ended = true;
			if (s.status !== 200) { s.body = buf.slice(0, 300); return finish(s, `status ${s.status}`); }
			if (s.errEvent) return finish(s, `error event (${s.errEvent})`);
			if (!s.doneSeen) return finish(s, 'no [DONE]');
			if (!last) {
				if (s.how) return; // cut at the bound meanwhile
				s.doneSeen = false;
				return exchange(s, thenBody, true);
			}
			if (opts.expect !== null ? s.text !== opts.expect : !s.text.length) return finish(s, 'wrong content');
			finish(s, 'ok');
		});
		res.on('error', e => finish(s, `cut (${e.code ?? e.message})`));
		res.on('close', () => { if (!ended) finish(s, 'cut (closed before its end)'); });
	});
	req.on('error', e => { s.err = e.code ?? e.message; finish(s, `connection error (${s.err})`); });
	s.req = req;
	req.end(reqBody);
}

function pct(xs, q) {
	if (!xs.length) return '';
	const v = [...xs].sort((a, b) => a - b);
	return v[Math.max(0, Math.ceil(q * v.length) - 1)].toFixed(1);
}
const maxOf = xs => (xs.length ? Math.max(...xs).toFixed(1) : '');

function done() {
	if (sampler) clearInterval(sampler);
	if (deadline) clearTimeout(deadline);
	tick();
	const ok = streams.filter(s => s.how === 'ok');
	const s503 = streams.filter(s => s.how === 'status 503');
	const unfinished = streams.filter(s => s.how === 'unfinished');
	const other = streams.filter(s => s.how !== 'ok' && s.how !== 'status 503' && s.how !== 'unfinished');
	const kinds = {};
	for (const s of other) kinds[s.how] = (kinds[s.how] ?? 0) + 1;
	const out = {
		n: opts.n,
		completed: ok.length,
		failed: s503.length + other.length,
		failed_503: s503.length,
		failed_503_p50_ms: pct(s503.map(s => s.tEnd), 0.5),
		failed_503_max_ms: maxOf(s503.map(s => s.tEnd)),
		failed_503_retry_after: s503.filter(s => s.retryAfter !== null).length,
		failed_other: other.length,
		failed_kinds: Object.entries(kinds).map(([k, v]) => `${v} ${k}`).join('; '),
		unfinished: unfinished.length,
		unfinished_no_byte: unfinished.filter(s => !s.gotByte).length,
		total_p50_ms: pct(ok.map(s => s.tEnd), 0.5),
		total_max_ms: maxOf(ok.map(s => s.tEnd)),
		first_p50_ms: pct(ok.map(s => s.tFirst), 0.5),
		first_max_ms: maxOf(ok.map(s => s.tFirst)),
		wall_ms: (unfinished.length ? performance.now() - tStart : tLast).toFixed(1),
		mem_idle_kb: memOn ? idle : '',
		mem_peak_kb: memOn ? peak : '',
		mem_procs: memOn ? peakProcs : '',
		mem_samples: memOn ? samples : '',
		mem_spawned_kb: memOn ? peakSpawned : '',
		served_peak: servedPeak,
	};
	const first = other[0];
	if (first) process.stderr.write(`capacity-client: first failure: stream ${first.i}: ${first.how}${first.body ? `: ${first.body}` : ''}\n`);
	for (const [k, v] of Object.entries(out)) process.stdout.write(`${k}=${String(v).replace(/[^A-Za-z0-9 ._:;()\[\]-]/g, '_')}\n`);
	process.exit(0);
}

// the descriptors this process may hold: one per stream, and some of its own
{
	const lim = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1];
	if (lim && lim !== 'unlimited' && Number(lim) < opts.n + 32) {
		process.stderr.write(`capacity-client: WARNING: RLIMIT_NOFILE is ${lim}, under ${opts.n} streams + 32: streams past it fail with EMFILE\n`);
	}
	process.stdout.write(`nofile=${lim ?? ''}\n`);
}

if (memOn) {
	const m = sampleMem();
	idle = m.kb; peak = m.kb; peakProcs = m.procs; samples = 1;
	idlePids = new Set(pids);
	for (const p of pids) idleChatKb = Math.max(idleChatKb ?? 0, firstKb.get(p) ?? 0);
}
tStart = performance.now();
for (let i = 0; i < opts.n; i++) start(i);
// every --sample-ms: the streams being answered, and the memory
function tick() {
	let served = 0;
	for (const s of streams) if (s.gotByte && !s.how) served++;
	if (served > servedPeak) servedPeak = served;
	if (!memOn) return;
	const m = sampleMem();
	samples++;
	if (m.kb > peak) { peak = m.kb; peakProcs = m.procs; peakSpawned = m.spawned; }
}
sampler = setInterval(tick, opts.sampleMs);
deadline = setTimeout(() => {
	for (const s of streams) {
		if (s.how) continue;
		s.req.destroy();
		finish(s, 'unfinished');
	}
}, opts.timeoutS * 1000);
