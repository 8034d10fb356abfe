// promtext.mjs: a strict parser of the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format) for the
// black-box tests: exits 1 naming the first line that breaks it; prints each sample as
// "name{labels} value" (labels as written) on success.
// Checks: names and label names, quoted and escaped label values, float values, one TYPE per
// family before its samples, each family's lines contiguous, histograms' buckets in increasing
// le, cumulative, ending with +Inf equal to _count, with a _sum.
import { readFileSync } from "node:fs";

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const text = readFileSync(process.argv[2], "utf8");
const fail = (n, why, line) => { console.error(`promtext: line ${n}: ${why}: ${JSON.stringify(line)}`); process.exit(1); };

// parseLabels: "{a=\"x\",b=\"y\"}" at s[i]; [labels object, index after '}']
function parseLabels(s, i, n, line) {
  const out = {};
  i++;
  while (s[i] !== "}") {
    let j = i;
    while (j < s.length && s[j] !== "=") j++;
    const k = s.slice(i, j);
    if (!LABEL.test(k)) fail(n, `bad label name ${k}`, line);
    if (s[j + 1] !== '"') fail(n, "label value not quoted", line);
    let v = "";
    for (j += 2; s[j] !== '"'; j++) {
      if (j >= s.length) fail(n, "unterminated label value", line);
      if (s[j] === "\\") {
        j++;
        if (s[j] === "n") v += "\n"; else if (s[j] === "\\" || s[j] === '"') v += s[j]; else fail(n, "bad escape", line);
      } else v += s[j];
    }
    if (k in out) fail(n, `label ${k} twice`, line);
    out[k] = v;
    i = j + 1;
    if (s[i] === ",") i++;
    else if (s[i] !== "}") fail(n, "expected , or }", line);
  }
  return [out, i + 1];
}

const types = new Map(), done = new Set(), samples = [];
let current = null;
const familyOf = (name) => {
  for (const suf of ["_bucket", "_sum", "_count"]) {
    const base = name.slice(0, -suf.length);
    if (name.endsWith(suf) && types.get(base) === "histogram") return base;
  }
  return name;
};
text.split("\n").forEach((line, idx) => {
  const n = idx + 1;
  if (line === "") return;
  if (line.startsWith("#")) {
    const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
    if (!m) return; // a plain comment
    if (!NAME.test(m[2])) fail(n, "bad metric name", line);
    if (m[1] === "TYPE") {
      if (types.has(m[2])) fail(n, "second TYPE", line);
      if (!TYPES.has(m[3])) fail(n, "unknown type", line);
      if (done.has(m[2]) || samples.some((s) => s.family === m[2])) fail(n, "TYPE after samples", line);
      types.set(m[2], m[3]);
    }
    return;
  }
  let i = 0;
  while (i < line.length && line[i] !== "{" && line[i] !== " ") i++;
  const name = line.slice(0, i);
  if (!NAME.test(name)) fail(n, "bad metric name", line);
  let labels = {};
  if (line[i] === "{") [labels, i] = parseLabels(line, i, n, line);
  if (line[i] !== " ") fail(n, "expected a space before the value", line);
  const rest = line.slice(i + 1).split(" ");
  const value = rest[0] === "+Inf" ? Infinity : rest[0] === "-Inf" ? -Infinity : Number(rest[0]);
  if (rest[0] !== "NaN" && Number.isNaN(value)) fail(n, "bad value", line);
  if (rest.length > 2 || (rest[1] !== undefined && !/^-?\d+$/.test(rest[1]))) fail(n, "bad timestamp", line);
  const family = familyOf(name);
  if (family !== current) {
    if (done.has(family)) fail(n, `family ${family} not contiguous`, line);
    if (current) done.add(current);
    current = family;
  }
  samples.push({ name, labels, value, family, raw: line.slice(0, i) });
});

// histograms: per label set (without le), buckets increasing and cumulative, +Inf == _count, a _sum
for (const [fam, type] of types) {
  if (type !== "histogram") continue;
  const groups = new Map();
  const key = (l) => JSON.stringify(Object.entries(l).filter(([k]) => k !== "le").sort());
  for (const s of samples.filter((x) => x.family === fam)) {
    const g = groups.get(key(s.labels)) ?? { buckets: [], sum: null, count: null };
    groups.set(key(s.labels), g);
    if (s.name === fam + "_bucket") {
      if (!("le" in s.labels)) fail(0, `${fam}: a bucket without le`, s.raw);
      g.buckets.push([s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), s.value]);
    } else if (s.name === fam + "_sum") g.sum = s.value;
    else if (s.name === fam + "_count") g.count = s.value;
  }
  for (const [k, g] of groups) {
    const b = g.buckets;
    for (let j = 1; j < b.length; j++)
      if (!(b[j][0] > b[j - 1][0]) || b[j][1] < b[j - 1][1]) fail(0, `${fam}${k}: buckets not increasing/cumulative`, "");
    if (!b.length || b[b.length - 1][0] !== Infinity) fail(0, `${fam}${k}: no +Inf bucket`, "");
    if (g.count !== b[b.length - 1][1]) fail(0, `${fam}${k}: +Inf bucket != _count`, "");
    if (g.sum === null) fail(0, `${fam}${k}: no _sum`, "");
  }
}
for (const s of samples) console.log(`${s.raw} ${s.value}`);
