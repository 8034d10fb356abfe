// json-eval-server.mjs: helpers.bash's json_eval without a node start per call: one node per bats run, on a Unix socket.
//
//   node json-eval-server.mjs SOCKET
//
// Each request's body is EXPR, a NUL byte, then a JSON text. The answer is "0" and the value of
// the JavaScript expression EXPR with j the parsed JSON (a string as it is, anything else as
// JSON.stringify gives it: what `node -e` printed for json_eval), or "1" and the error
// (not JSON, an exception). The server ends by itself once SOCKET is gone (bats removes its run's
// temporary directory at the end) or after JSON_EVAL_IDLE_MS without a request.
import { createServer } from "node:http";
import { existsSync, unlinkSync } from "node:fs";

const sock = process.argv[2];
const idleMs = Number(process.env.JSON_EVAL_IDLE_MS || 600000);
let last = Date.now();

// evaluate: EXPR's value with only j (and the globals) in its scope
function evaluate(j, expr) {
  return eval(expr);
}

const server = createServer((req, res) => {
  const parts = [];
  req.on("data", (c) => parts.push(c));
  req.on("end", () => {
    last = Date.now();
    const all = Buffer.concat(parts);
    const nul = all.indexOf(0);
    let out;
    try {
      if (nul < 0) throw new Error("json-eval-server: no NUL between the expression and the JSON");
      const j = JSON.parse(all.subarray(nul + 1).toString("utf8"));
      const v = evaluate(j, all.subarray(0, nul).toString("utf8"));
      const s = typeof v === "string" ? v : JSON.stringify(v);
      out = "0" + String(s);
    } catch (e) {
      out = "1" + String(e && e.stack ? e.stack : e);
    }
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    res.end(out);
  });
});

try {
  unlinkSync(sock);
} catch {
  // none yet
}
server.listen(sock);
setInterval(() => {
  if (!existsSync(sock) || Date.now() - last > idleMs) process.exit(0);
}, 1000).unref();
// the interval is unref'd: the listening server keeps the process; exit when told to stop
process.on("SIGTERM", () => process.exit(0));
