// docs/openapi.yaml is the source of the API document; docs/openapi.json is its JSON form, checked
// in so the build can embed it without a YAML parser (see docs/api.md).
//   node check.mjs check YAML JSON [VERSION]   validate both as OpenAPI 3.1, require JSON == YAML's
//                                               conversion byte for byte, info.version == VERSION
//   node check.mjs write YAML JSON             regenerate JSON from YAML
// Exit 0: fine; 1: a check failed; 77: the npm packages are not installed (ctest: skipped).
import { readFile, writeFile } from "node:fs/promises";

let Validator, YAML;
try {
  ({ Validator } = await import("@seriousme/openapi-schema-validator"));
  YAML = await import("yaml");
} catch (e) {
  console.log(`SKIPPED: the OpenAPI validator is not installed (${e.code ?? e.message}); run: bash scripts/openapi.sh install`);
  process.exit(77);
}

const [mode, yamlPath, jsonPath, version] = process.argv.slice(2);
if (!["check", "write"].includes(mode) || !yamlPath || !jsonPath) {
  console.error("usage: node check.mjs check|write docs/openapi.yaml docs/openapi.json [VERSION]");
  process.exit(2);
}

// The YAML as a plain object: strict YAML 1.2 (no merge keys, no duplicate keys).
async function loadYaml(path) {
  const doc = YAML.parseDocument(await readFile(path, "utf8"), { uniqueKeys: true, merge: false });
  if (doc.errors.length) throw new Error(`${path}: ${doc.errors.map((e) => e.message).join("; ")}`);
  return doc.toJS({ maxAliasCount: 1000 });
}

// The one JSON text the YAML gives: two-space indent, a final newline.
const render = (obj) => JSON.stringify(obj, null, 2) + "\n";

// Errors of `spec` as OpenAPI 3.1 (the official JSON schema of 3.1), plus every $ref resolving.
async function problems(spec) {
  const v = new Validator();
  const res = await v.validate(structuredClone(spec));
  if (!res.valid) return [JSON.stringify(res.errors, null, 1)];
  if (v.version !== "3.1") return [`the document is OpenAPI ${v.version}, not 3.1`];
  try {
    v.resolveRefs();
  } catch (e) {
    return [`unresolvable $ref: ${e.message}`];
  }
  return [];
}

const spec = await loadYaml(yamlPath);
if (mode === "write") {
  await writeFile(jsonPath, render(spec));
  console.log(`wrote ${jsonPath}`);
  process.exit(0);
}

let failed = 0;
const fail = (msg) => {
  console.log(`FAIL: ${msg}`);
  failed++;
};

for (const p of await problems(spec)) fail(`${yamlPath} is not valid OpenAPI 3.1: ${p}`);
const jsonText = await readFile(jsonPath, "utf8");
let json;
try {
  json = JSON.parse(jsonText);
} catch (e) {
  fail(`${jsonPath} is not JSON: ${e.message}`);
}
if (json !== undefined) {
  for (const p of await problems(json)) fail(`${jsonPath} is not valid OpenAPI 3.1: ${p}`);
  if (jsonText !== render(spec))
    fail(`${jsonPath} is not the JSON form of ${yamlPath}: run 'bash scripts/openapi.sh write' and commit both`);
}
if (version && spec.info?.version !== version) fail(`info.version is ${spec.info?.version}, the project is ${version}`);

// The validator must be live: documents broken in known ways are refused.
const broken = {
  "a parameter without `in`": (d) => delete d.paths["/api/client-certs"].get.parameters[0].in,
  "a response that is not an object": (d) => (d.paths["/health"].get.responses["200"] = 5),
  "a dangling $ref": (d) => (d.paths["/api/ca"].get.responses["200"].content["application/json"].schema.$ref = "#/components/schemas/Nope"),
};
for (const [what, breakIt] of Object.entries(broken)) {
  const d = structuredClone(spec);
  breakIt(d);
  if ((await problems(d)).length === 0) fail(`the validator accepted a document with ${what}`);
}

const count = Object.values(spec.paths ?? {}).reduce((n, item) => n + Object.keys(item).filter((k) => k !== "parameters").length, 0);
if (failed) {
  console.log(`${failed} check(s) failed`);
  process.exit(1);
}
console.log(`ok: ${yamlPath} and ${jsonPath} are valid OpenAPI 3.1 and agree (${count} operations, version ${spec.info.version})`);
