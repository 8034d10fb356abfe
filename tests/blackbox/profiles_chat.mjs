// profiles_chat.mjs: the whole chat suite (chat.test.mjs: the real `openai` SDK through a real gateway; streamed and not;
// tool rounds, mixed batches, parallel calls, errors) run once against every other provider profile of the upstream
// simulator (tests/upstream-sim/profiles.mjs): one test per profile, passing when every case of the suite passes.
// (check.sh runs chat.test.mjs under the default profile, `openai`, on its own, behind every front end.)
//
//   node --test tests/blackbox/profiles_chat.mjs
//   SIM_PROFILES=deepseek,gemini node --test tests/blackbox/profiles_chat.mjs     (a subset)
//
// Two profiles run at a time (each run starts its own simulator and gateway on free ports). The gateways log at
// the default level, info (MCPGW_TEST_LOG_LEVEL), unlike the other suites' debug: nothing may work only at debug.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROFILE_NAMES, getProfile } from '../upstream-sim/profiles.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SUITE = path.join(HERE, 'chat.test.mjs');
const names = (process.env.SIM_PROFILES ? process.env.SIM_PROFILES.split(',').map(s => s.trim()).filter(Boolean) : PROFILE_NAMES)
	.filter(n => n !== 'openai');
for (const n of names) getProfile(n); // an unknown name fails here, not as an empty run

/** run the chat suite under profile name: {code, out} (its TAP output) */
function runSuite(name) {
	return new Promise(resolve => {
		// a child test run of its own: without NODE_TEST_CONTEXT, which would make node skip it as recursive
		const { NODE_TEST_CONTEXT, ...env } = process.env;
		void NODE_TEST_CONTEXT;
		const p = spawn(process.execPath, ['--test', '--test-reporter=tap', SUITE], {
			env: { MCPGW_TEST_LOG_LEVEL: 'info', ...env, SIM_PROFILE: name }, stdio: ['ignore', 'pipe', 'pipe'],
		});
		let out = '';
		p.stdout.on('data', d => { out += d; });
		p.stderr.on('data', d => { out += d; });
		p.on('close', code => resolve({ code, out }));
	});
}

describe('the chat suite against every provider profile', { concurrency: 2 }, () => {
	for (const name of names) {
		test(`chat.test.mjs under SIM_PROFILE=${name}`, { timeout: 240000 }, async () => {
			const { code, out } = await runSuite(name);
			const count = k => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(out)?.[1] ?? NaN);
			const failed = out.split('\n').filter(l => /^\s*not ok \d+ - /.test(l) && !/^not ok/.test(l)).map(l => l.trim());
			assert.ok(count('pass') > 0, `${name}: no case passed:\n${out.slice(-2000)}`);
			assert.equal(count('fail'), 0, `${name}: ${count('fail')} failed:\n${failed.join('\n')}`);
			// no case failed but the run did not end well (a case cancelled, an error outside the cases,
			// a teardown that threw): what it printed last says which
			assert.equal(code, 0, `${name}: the suite exited ${code} (cancelled: ${count('cancelled')}):\n${out.slice(-3000)}`);
		});
	}
});
