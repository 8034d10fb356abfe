#!/usr/bin/env node
// sideeffect-server.mjs: a stdio MCP server (the official SDK) whose tools commit a side effect and then answer late, and whose schemas are the broken kinds public servers send.
//
//   node tests/sideeffect-server.mjs JOURNAL_FILE [PREFIX]
//
// PREFIX (default none) goes before every tool name, so that two of these servers can run side by side.
// Tools (each run appends one line "<tool> <arguments JSON>" to JOURNAL_FILE before it waits):
//   commit       annotations {idempotentHint: false}: commits, then answers after `delay_ms` (default 2500)
//   peek         annotations {readOnlyHint: true}: the same, safe to repeat
//   echo_notype  inputSchema without "type" (issue 13 case 6): answers its text at once
//   scalar_args  inputSchema {"type": "string"}: cannot be function parameters; answers "called by name"
//   hold         annotations {readOnlyHint: true}: answers after `delay_ms` (default 1000); its journal line
//                ends with the number of calls it had running at once, itself included ("hold {...} 2")
// The low-level Server is used so that the schemas go out exactly as written here.
import { appendFileSync } from "node:fs";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const journal = process.argv[2];
const prefix = process.argv[3] ?? "";
if (!journal) {
	console.error("usage: sideeffect-server.mjs JOURNAL_FILE [PREFIX]");
	process.exit(2);
}

const delaySchema = {
	type: "object",
	properties: { note: { type: "string" }, delay_ms: { type: "integer", minimum: 0 } },
};
const tools = [
	{ name: "commit", description: "Commit a note (not idempotent).", inputSchema: delaySchema,
	  annotations: { readOnlyHint: false, idempotentHint: false, destructiveHint: false } },
	{ name: "peek", description: "Read the notes (read-only).", inputSchema: delaySchema,
	  annotations: { readOnlyHint: true } },
	{ name: "echo_notype", description: "Echo the text.",
	  inputSchema: { properties: { text: { type: "string" } }, required: ["text"] } },
	{ name: "scalar_args", description: "Takes a bare string.", inputSchema: { type: "string" } },
	{ name: "hold", description: "Wait a while (read-only).", inputSchema: delaySchema,
	  annotations: { readOnlyHint: true } },
].map((t) => ({ ...t, name: prefix + t.name }));

const server = new Server({ name: "sideeffect", version: "1.0.0" }, { capabilities: { tools: {} } });

server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools }));

let holding = 0; // hold calls running now

server.setRequestHandler(CallToolRequestSchema, async (req) => {
	const name = req.params.name.startsWith(prefix) ? req.params.name.slice(prefix.length) : req.params.name;
	const args = req.params.arguments ?? {};

	if (name === "hold") {
		holding++;
		appendFileSync(journal, `${req.params.name} ${JSON.stringify(args)} ${holding}\n`);
		await new Promise((resolve) => setTimeout(resolve, Number.isInteger(args.delay_ms) ? args.delay_ms : 1000));
		holding--;
		return { content: [{ type: "text", text: `hold: ${args.note ?? ""}` }] };
	}
	appendFileSync(journal, `${req.params.name} ${JSON.stringify(args)}\n`);
	if (name === "commit" || name === "peek") {
		// the side effect is done; the answer comes late and ignores cancellation, as a slow server's would
		await new Promise((resolve) => setTimeout(resolve, Number.isInteger(args.delay_ms) ? args.delay_ms : 2500));
		return { content: [{ type: "text", text: `${name}: ${args.note ?? ""}` }] };
	}
	if (name === "echo_notype")
		return { content: [{ type: "text", text: String(args.text) }] };
	if (name === "scalar_args")
		return { content: [{ type: "text", text: "called by name" }] };
	return { content: [{ type: "text", text: `unknown tool ${name}` }], isError: true };
});

await server.connect(new StdioServerTransport());
