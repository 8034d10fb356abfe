#!/usr/bin/env node
// broker-client.mjs: talks to the broker on its unix socket directly, as responders do (one JSON-RPC message a line), to load it with the largest messages its limits allow.
//
//   node tests/broker-client.mjs SOCKET list N [STALL_MS]
//       N clients connect at once and each sends tools/list; each reads nothing for STALL_MS
//       (default 0: a slow reader leaves its answer queued in the broker), then reads its answer.
//       Prints {"clients":N,"bytes":[...],"tools":[...]} (each answer's size and tool count).
//   node tests/broker-client.mjs SOCKET call TOOL ARGS_JSON
//       one tools/call. Prints {"bytes":size of the answer line,"text":length of its first
//       content item's text,"server":its _meta["mcpgw/server"],"error":the error, if any}.
//   node tests/broker-client.mjs SOCKET calls N TOOL ARGS_JSON
//       N clients connect at once and each sends one tools/call (its arguments ARGS_JSON with
//       "note": its number). Prints {"calls":[{"n","ms": time to its answer,"text","error"}...]}.
//   node tests/broker-client.mjs SOCKET echo TOOL BYTES
//       tools/call TOOL with arguments {"text": BYTES bytes of "y"}; printed as for call.
import { connect } from "node:net";

const [sock, mode, ...rest] = process.argv.slice(2);

// request SOCKET MSG STALL_MS: send one message, read one answer line; resolves {bytes, msg}
function request(msg, stallMs) {
	return new Promise((resolve, reject) => {
		const c = connect(sock), chunks = [];
		let size = 0;

		c.on("connect", () => {
			c.write(JSON.stringify(msg) + "\n");
			if (stallMs > 0) {
				c.pause();
				setTimeout(() => c.resume(), stallMs);
			}
		});
		c.on("data", (d) => {
			const nl = d.indexOf(10);

			chunks.push(nl < 0 ? d : d.subarray(0, nl));
			size += nl < 0 ? d.length : nl;
			if (nl >= 0) {
				c.destroy();
				resolve({ bytes: size + 1, msg: JSON.parse(Buffer.concat(chunks, size).toString("utf8")) });
			}
		});
		c.on("error", reject);
		c.on("close", () => reject(new Error(`the broker closed the connection after ${size} bytes`)));
	});
}

function summary(a) {
	const r = a.msg.result;

	return { bytes: a.bytes, text: r?.content?.[0]?.text?.length ?? null, server: r?._meta?.["mcpgw/server"] ?? null,
		error: a.msg.error ?? null, id: a.msg.id };
}

async function main() {
	if (mode === "list") {
		const n = Number(rest[0] ?? 1), stall = Number(rest[1] ?? 0), all = [];

		for (let i = 0; i < n; i++)
			all.push(request({ jsonrpc: "2.0", id: i + 1, method: "tools/list", params: {} }, stall));
		const got = await Promise.all(all);
		console.log(JSON.stringify({ clients: n, bytes: got.map((a) => a.bytes),
			tools: got.map((a) => a.msg.result?.tools?.length ?? -1) }));
	} else if (mode === "call") {
		const a = await request({ jsonrpc: "2.0", id: "c1", method: "tools/call",
			params: { name: rest[0], arguments: JSON.parse(rest[1] ?? "{}") } }, 0);
		console.log(JSON.stringify(summary(a)));
	} else if (mode === "calls") {
		const n = Number(rest[0] ?? 1), args = JSON.parse(rest[2] ?? "{}"), t0 = Date.now();
		const got = await Promise.all(Array.from({ length: n }, (_, i) =>
			request({ jsonrpc: "2.0", id: i + 1, method: "tools/call",
				params: { name: rest[1], arguments: { ...args, note: String(i + 1) } } }, 0)
				.then((a) => ({ n: i + 1, ms: Date.now() - t0, text: a.msg.result?.content?.[0]?.text ?? null,
					error: a.msg.error ?? null }))));
		console.log(JSON.stringify({ calls: got }));
	} else if (mode === "echo") {
		const a = await request({ jsonrpc: "2.0", id: "e1", method: "tools/call",
			params: { name: rest[0], arguments: { text: "y".repeat(Number(rest[1])) } } }, 0);
		console.log(JSON.stringify(summary(a)));
	} else {
		throw new Error(`unknown mode ${mode}`);
	}
}

main().catch((e) => {
	console.error(`broker-client: ${e.message}`);
	process.exit(1);
});
