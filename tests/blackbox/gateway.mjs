// gateway.mjs: start/stop the upstream simulator and real mcpgw gateways (broker + web server + responders)
// for node:test files in tests/blackbox/.
//
//   import { startSim, startGateway, freePort } from './gateway.mjs';
//   const sim = await startSim();                        // tests/upstream-sim/sim.mjs --port 0
//   const gw = await startGateway({ upstream: sim.v1 }); // temp MCPGW_HOME, deploy/mcpgwctl start
//   ... gw.url, gw.v1 ...
//   await gw.stop(); await sim.stop();
//
// SIM_PROFILE=NAME makes every simulator speak that provider's dialect (tests/upstream-sim/profiles.mjs;
// default openai), and startGateway({sim}) gives the gateway the settings that dialect needs.
// MCPGW_BB_KEEP=1 keeps the temporary homes (configs, logs) after the run. MCPGW_FRONTEND picks the
// web server in front (lighttpd, the default; lighttpd-cgi, apache-fcgid, apache-proxy-fcgi, apache-cgi
// or cgi; see deploy/mcpgwctl), MCPGW_USER the user of the apache-* ones when run as root.
import { spawn, execFile, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { getProfile } from '../upstream-sim/profiles.mjs';
import { canaries, dotenvLines, plantServers, keep, gatewayStarted, gatewayStopped } from './canaries.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MCPGWCTL = path.join(ROOT, 'deploy/mcpgwctl');
export const SQLITE_SERVER = path.join(ROOT, 'mcp-server-sqlite/mcp-server-sqlite');
export const EVERYTHING_SERVER = path.join(ROOT, 'tests/node_modules/.bin/mcp-server-everything');

/** the gateway's upstream key: the run's upstream key canary (canaries.mjs; the simulator may see it, nothing else) */
export const UPSTREAM_KEY = canaries().upstreamkey;

const live = new Set(); // everything started and not yet stopped, stopped on process exit as a last resort

/** the upstream simulator's provider profile for this run (SIM_PROFILE, default openai); an unknown name throws here */
export const SIM_PROFILE = process.env.SIM_PROFILE || 'openai';
getProfile(SIM_PROFILE);

/** the front end the gateways run behind (MCPGW_FRONTEND, default lighttpd) */
export const FRONTEND = process.env.MCPGW_FRONTEND || 'lighttpd';

/** as root, the apache-* front ends run the responders and the broker as MCPGW_USER (www-data): give it home */
function handOverHome(home) {
	if (!/^(apache-|cgi$)/.test(FRONTEND) || process.getuid?.() !== 0) return;
	const user = process.env.MCPGW_USER || 'www-data';
	const uid = Number(execFileSync('id', ['-u', user]).toString().trim());
	const gid = Number(execFileSync('id', ['-g', user]).toString().trim());
	const walk = p => {
		fs.chownSync(p, uid, gid);
		if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
	};
	walk(home);
}

/** a TCP port on 127.0.0.1 nobody listens on right now */
export function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.once('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

// ---------------------------------------------------------------------------
// the upstream simulator

/**
 * startSim(args): spawn tests/upstream-sim/sim.mjs --port 0 [args] (plus --profile SIM_PROFILE unless args name one);
 * resolves when it printed LISTENING.
 * Returns {port, base, v1, proc, profile, gatewayEnv(), script(turns), append(turns), reset(), requests(since, path), stats(), stop()}.
 */
export async function startSim(args = []) {
	const at = args.indexOf('--profile');
	const profile = at >= 0 ? args[at + 1] : SIM_PROFILE;
	if (at < 0 && profile !== 'openai') args = [...args, '--profile', profile];
	const proc = spawn(process.execPath, [path.join(ROOT, 'tests/upstream-sim/sim.mjs'), '--port', '0', ...args],
		{ stdio: ['ignore', 'pipe', 'pipe'] });
	let stderr = '';
	proc.stderr.on('data', d => { stderr += d; });
	const port = await new Promise((resolve, reject) => {
		const rl = createInterface({ input: proc.stdout });
		rl.once('line', l => {
			const m = /^LISTENING (\d+)$/.exec(l);
			m ? resolve(Number(m[1])) : reject(new Error(`sim: unexpected first line ${JSON.stringify(l)}`));
		});
		proc.once('exit', c => reject(new Error(`sim exited with ${c} before listening: ${stderr}`)));
	});
	const base = `http://127.0.0.1:${port}`;
	const ctl = async (p, method = 'GET', body) => {
		const r = await fetch(base + p, { method, body: body === undefined ? undefined : JSON.stringify(body) });
		const j = await r.json();
		if (!r.ok) throw new Error(`sim ${method} ${p}: ${r.status} ${JSON.stringify(j)}`);
		return j;
	};
	const sim = {
		port, base, v1: `${base}/v1`, proc, profile,
		/** the gateway settings this profile's upstream needs (Azure: its deployment URL and API version) */
		gatewayEnv: () => getProfile(profile).gateway_env?.(sim) ?? {},
		get stderr() { return stderr; },
		script: turns => ctl('/_sim/script', 'POST', turns),
		append: turns => ctl('/_sim/append', 'POST', turns),
		reset: () => ctl('/_sim/reset', 'POST'),
		/** the logged requests with seq > since: chat completions (whatever path the provider serves
		 * them on, e.g. Azure's /openai/deployments/NAME/chat/completions) unless p is given */
		requests: async (since = 0, p = '/v1/chat/completions') => {
			if (p !== '/v1/chat/completions') return ctl(`/_sim/requests?since=${since}${p ? `&path=${encodeURIComponent(p)}` : ''}`);
			return (await ctl(`/_sim/requests?since=${since}`)).filter(r => /\/chat\/completions$/.test(r.path));
		},
		stats: () => ctl('/_sim/stats'),
		queued: async () => (await ctl('/_sim/script')).queued,
		/** the highest request seq logged so far (use as `since` for the next check) */
		lastSeq: async () => { const all = await ctl('/_sim/requests?since=0'); return all.length ? all[all.length - 1].seq : 0; },
		stop: () => stopChild(proc).finally(() => live.delete(sim)),
	};
	live.add(sim);
	return sim;
}

function stopChild(proc) {
	return new Promise(resolve => {
		if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
		proc.once('exit', () => resolve());
		proc.kill('SIGTERM');
		setTimeout(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); }, 3000).unref();
	});
}

// ---------------------------------------------------------------------------
// the gateway

function run(cmd, args, env) {
	return new Promise(resolve => {
		execFile(cmd, args, { env, timeout: 60000 }, (err, stdout, stderr) => {
			resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr });
		});
	});
}

/** the default MCP servers: the bundled SQLite server and server-everything (stdio) */
export function defaultServers(home) {
	return {
		sqlite: { command: SQLITE_SERVER, args: ['--db-path', path.join(home, 't.db')] },
		everything: { command: EVERYTHING_SERVER, args: ['stdio'] },
	};
}

/**
 * startGateway({upstream, sim, env, servers}): a temporary MCPGW_HOME under /tmp with .env
 * (OPENAI_BASE_URL=upstream, OPENAI_API_KEY=UPSTREAM_KEY, DEFAULT_MODEL=sim-model,
 * MCPGW_LOG_LEVEL=debug or $MCPGW_TEST_LOG_LEVEL, plus env) and servers_config.json (servers(home), default
 * defaultServers), then `mcpgwctl start` on a free port. With sim (a startSim() result) the
 * upstream is that simulator, with the settings its profile needs (sim.gatewayEnv(), under env).
 * The run's canaries are planted (canaries.mjs: the .env, the servers, every fetch to the gateway's
 * URL) and, on stop, its logs and databases kept for the end-of-run grep.
 * Returns {home, state, url, v1, env, stop(), logs()}.
 */
export async function startGateway({ upstream, sim, env = {}, servers = defaultServers } = {}) {
	if (sim) {
		upstream ??= sim.v1;
		env = { ...sim.gatewayEnv(), ...env };
	}
	if (!fs.existsSync(path.join(ROOT, 'broker/mcpgw-broker'))) throw new Error('gateway: build first (make all)');
	if (!fs.existsSync(EVERYTHING_SERVER)) throw new Error(`gateway: ${EVERYTHING_SERVER} missing: run 'npm ci' in tests/`);
	// short base path: the broker socket path must fit in sun_path (108 bytes)
	const home = fs.mkdtempSync(path.join(fs.existsSync('/tmp') ? '/tmp' : os.tmpdir(), 'mcpgw-js.'));
	const state = path.join(home, 'var');
	const port = await freePort();
	const settings = {
		OPENAI_BASE_URL: upstream,
		OPENAI_API_KEY: UPSTREAM_KEY,
		DEFAULT_MODEL: 'sim-model',
		// MCPGW_TEST_LOG_LEVEL: the level of the gateway under test (profiles_chat.mjs runs at the default,
		// info, as users do: what only happens at debug must not be what makes a test pass)
		MCPGW_LOG_LEVEL: process.env.MCPGW_TEST_LOG_LEVEL || 'debug',
		MCPGW_TOOL_TIMEOUT: '10',
		// MCPGW_TEST_CHAT_DRIVER: the chat driver of every gateway under test (loop: the event loop's)
		...(process.env.MCPGW_TEST_CHAT_DRIVER ? { MCPGW_CHAT_DRIVER: process.env.MCPGW_TEST_CHAT_DRIVER } : {}),
		...env,
	};
	fs.writeFileSync(path.join(home, '.env'),
		'# mcpgw node black-box test settings\n' +
		Object.entries(settings).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => `${k}=${v}\n`).join('') +
		dotenvLines());
	fs.writeFileSync(path.join(home, 'servers_config.json'), JSON.stringify({ mcpServers: plantServers(servers(home)) }, null, 2));
	// a clean environment: none of the caller's MCPGW_* / OPENAI_* settings leak in
	const procEnv = {};
	for (const [k, v] of Object.entries(process.env)) if (!/^(MCPGW_|OPENAI_|DEFAULT_MODEL$)/.test(k)) procEnv[k] = v;
	Object.assign(procEnv, { MCPGW_HOME: home, MCPGW_STATE_DIR: state, MCPGW_LISTEN: `127.0.0.1:${port}`, MCPGW_FRONTEND: FRONTEND });
	if (process.env.MCPGW_USER) procEnv.MCPGW_USER = process.env.MCPGW_USER;
	handOverHome(home);

	const url = `http://127.0.0.1:${port}`;
	const logs = () => {
		let s = '';
		for (const f of ['broker.log', 'lighttpd.log', 'apache2.log', 'responders.log']) {
			try { s += `--- ${f} (last 40 lines)\n${fs.readFileSync(path.join(state, f), 'utf8').split('\n').slice(-40).join('\n')}\n`; } catch { /* none */ }
		}
		return s;
	};
	let stopped = false;
	const gw = {
		home, state, url, v1: `${url}/v1`, env: procEnv, logs, frontend: FRONTEND,
		async stop() {
			if (stopped) return;
			stopped = true;
			live.delete(gw);
			gatewayStopped(url);
			await run('sh', [MCPGWCTL, 'stop'], procEnv);
			keep(home, `node-${path.basename(process.argv[1] || 'node', '.mjs')}-${FRONTEND}-${path.basename(home)}`);
			if (process.env.MCPGW_BB_KEEP === '1') process.stderr.write(`# kept ${home}\n`);
			else fs.rmSync(home, { recursive: true, force: true });
		},
	};
	live.add(gw);
	gatewayStarted(url, !settings.MCPGW_API_KEYS);
	const r = await run('sh', [MCPGWCTL, 'start'], procEnv);
	if (r.code !== 0) {
		const detail = `${r.out}\n${logs()}`;
		await gw.stop();
		throw new Error(`mcpgwctl start failed (${r.code}):\n${detail}`);
	}
	return gw;
}

// last resort: a crash or an uncaught failure still stops what was started (synchronously)
process.on('exit', () => {
	for (const x of live) {
		try {
			if (x.proc) x.proc.kill('SIGKILL');
			else {
				let files = [];
				try { files = fs.readdirSync(x.state).filter(f => /^(lighttpd|apache2|broker|fcgi-.*)\.pid$/.test(f)); } catch { /* none */ }
				for (const f of files) {
					let pids = [];
					try { pids = fs.readFileSync(path.join(x.state, f), 'utf8').split('\n').filter(p => /^\d+$/.test(p)); } catch { /* gone */ }
					for (const p of pids) try { process.kill(Number(p), 'SIGTERM'); } catch { /* gone */ }
				}
			}
		} catch { /* ignore */ }
	}
});
