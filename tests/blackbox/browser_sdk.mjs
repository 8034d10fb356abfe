// browser_sdk.mjs: the openai npm SDK as a web page runs it (dangerouslyAllowBrowser) against a gateway, with the browser's CORS rules played by its fetch: a preflight whenever the Fetch standard makes one, Origin on every request, the CORS check on every answer.
//
//   node tests/blackbox/browser_sdk.mjs GATEWAY_URL ORIGIN
// prints one JSON line: what the SDK got and the preflights made; exits 1 (with the reason) when
// a step fails as it would fail in a browser.
import OpenAI from 'openai';

const [base, origin] = process.argv.slice(2);
if (!base || !origin) {
	console.error('usage: browser_sdk.mjs GATEWAY_URL ORIGIN');
	process.exit(2);
}

// Fetch standard, "CORS-safelisted request-header" (names and the value rules that matter here)
const UNSAFE_BYTE = /[\x00-\x08\x0a-\x1f"():<>?@[\\\]{}\x7f]/;
const SAFE_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain'];
function safelisted(name, value) {
	if (value.length > 128) return false;
	switch (name) {
		case 'accept': return !UNSAFE_BYTE.test(value);
		case 'accept-language':
		case 'content-language': return /^[0-9A-Za-z *,\-.;=]*$/.test(value);
		case 'content-type':
			return !UNSAFE_BYTE.test(value) && SAFE_TYPES.includes(value.split(';')[0].trim().toLowerCase());
		default: return false;
	}
}

// "CORS-unsafe request-header names": sorted, lowercase, as the preflight lists them
function unsafeNames(headers) {
	const names = [];
	for (const [name, value] of headers) if (!safelisted(name, value)) names.push(name);
	return [...new Set(names)].sort();
}

// the response header list as a browser splits it
const list = v => (v || '').split(',').map(s => s.trim().toLowerCase()).filter(Boolean);

const preflights = [];
const fail = msg => { throw new Error(`CORS: ${msg}`); };

async function corsFetch(url, init = {}) {
	const headers = new Headers(init.headers);
	const method = (init.method || 'GET').toUpperCase();
	const names = unsafeNames(headers);
	if (!['GET', 'HEAD', 'POST'].includes(method) || names.length) {
		const pre = { Origin: origin, 'Access-Control-Request-Method': method };
		if (names.length) pre['Access-Control-Request-Headers'] = names.join(',');
		const r = await fetch(url, { method: 'OPTIONS', headers: pre });
		await r.arrayBuffer();
		// "CORS-preflight fetch": an ok status, the CORS check, then the methods and headers granted
		if (r.status < 200 || r.status > 299) fail(`preflight of ${method} ${url}: status ${r.status}`);
		if (r.headers.get('access-control-allow-origin') !== origin) {
			fail(`preflight of ${url}: Access-Control-Allow-Origin ${r.headers.get('access-control-allow-origin')}`);
		}
		if (r.headers.get('access-control-allow-credentials')) fail('preflight grants credentials');
		const methods = list(r.headers.get('access-control-allow-methods'));
		if (!['get', 'head', 'post'].includes(method.toLowerCase()) && !methods.includes(method.toLowerCase())) {
			fail(`preflight does not allow ${method}: ${methods}`);
		}
		const granted = list(r.headers.get('access-control-allow-headers'));
		for (const n of names) if (!granted.includes(n)) fail(`preflight does not allow the header ${n}: ${granted}`);
		if (!r.headers.get('access-control-max-age')) fail('preflight without Access-Control-Max-Age');
		preflights.push({ method, path: new URL(url).pathname, headers: names });
	}
	headers.set('Origin', origin);
	const res = await fetch(url, { ...init, headers });
	// "CORS check" of the answer; what the page may read of it besides the safelisted response headers
	if (res.headers.get('access-control-allow-origin') !== origin) {
		fail(`${method} ${url}: Access-Control-Allow-Origin ${res.headers.get('access-control-allow-origin')}`);
	}
	const exposed = list(res.headers.get('access-control-expose-headers'));
	if (!exposed.includes('x-request-id') || !exposed.includes('retry-after')) fail(`exposed headers: ${exposed}`);
	return res;
}

const client = new OpenAI({
	apiKey: 'sk-browser-page', baseURL: `${base}/v1`, dangerouslyAllowBrowser: true, fetch: corsFetch,
	maxRetries: 0, timeout: 20000,
});

try {
	const chat = await client.chat.completions.create({ model: 'sim-model', messages: [{ role: 'user', content: 'hi' }] });
	let streamed = '';
	const stream = await client.chat.completions.create({
		model: 'sim-model', messages: [{ role: 'user', content: 'hi' }], stream: true,
	});
	for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
	const tools = await client.get('/tools');
	const ran = await client.post('/tools', { body: { tool: 'list_tables', arguments: {} } });
	console.log(JSON.stringify({
		chat: chat.choices[0].message.content, streamed, tools: tools.data.length, ran: ran.object, preflights,
	}));
} catch (e) {
	// the SDK wraps what its fetch threw (a connection error, as a browser's failed CORS check is)
	console.error(`browser_sdk: ${e.message}${e.cause ? `: ${e.cause.message}` : ''}`);
	process.exit(1);
}
