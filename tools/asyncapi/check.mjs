// Proves the official AsyncAPI tooling accepts and renders ../../asyncapi.yaml:
//   1. @asyncapi/parser (+ @asyncapi/avro-schema-parser) parses it from its file, so the relative
//      $ref to schemas/chat.events.Envelope.avsc resolves; any error-severity diagnostic fails.
//   2. @asyncapi/generator renders it with @asyncapi/html-template into ./out/ (gitignored), and
//      out/index.html must exist and name every message.
// Usage: `npm ci && npm run check` (or `node check.mjs`) in tools/asyncapi. Exit 0 = accepted.

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { AvroSchemaParser } from '@asyncapi/avro-schema-parser';
import Generator from '@asyncapi/generator';
import { DiagnosticSeverity, Parser, fromFile } from '@asyncapi/parser';

const here = path.dirname(fileURLToPath(import.meta.url));
const specPath = path.resolve(here, '..', '..', 'asyncapi.yaml');
const outDir = path.join(here, 'out');
const require = createRequire(import.meta.url);
const templateDir = path.dirname(require.resolve('@asyncapi/html-template/package.json'));

const SEVERITY = { 0: 'error', 1: 'warning', 2: 'info', 3: 'hint' };

function formatDiagnostic(d) {
  const where = d.range ? `L${d.range.start.line + 1}:${d.range.start.character + 1}` : '';
  const at = (d.path ?? []).join('.');
  return `  [${SEVERITY[d.severity] ?? d.severity}] ${d.code}: ${d.message}${at ? ` (at ${at})` : ''} ${where}`;
}

function fail(message) {
  console.error(`asyncapi check FAILED: ${message}`);
  process.exit(1);
}

async function parseSpec() {
  const parser = new Parser();
  parser.registerSchemaParser(AvroSchemaParser());
  const { document, diagnostics } = await fromFile(parser, specPath).parse();
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  const others = diagnostics.filter((d) => d.severity !== DiagnosticSeverity.Error);
  if (others.length) {
    console.log(`parser: ${others.length} non-error diagnostic(s):`);
    others.forEach((d) => console.log(formatDiagnostic(d)));
  }
  if (errors.length || !document) {
    console.error(`parser: ${errors.length} error(s) in ${specPath}:`);
    errors.forEach((d) => console.error(formatDiagnostic(d)));
    fail('the AsyncAPI parser rejected asyncapi.yaml');
  }
  return document;
}

async function render(document) {
  rmSync(outDir, { recursive: true, force: true });
  const generator = new Generator(templateDir, outDir, {
    forceWrite: true,
    // compile: true (the default) transpiles the template here; the published
    // html-template __transpiled/ output requires a file by the absolute path of its CI runner.
    compile: true,
  });
  try {
    await generator.generate(document);
  } catch (err) {
    console.error(err);
    fail(`@asyncapi/generator could not render ${specPath} with @asyncapi/html-template`);
  }
  const indexPath = path.join(outDir, 'index.html');
  if (!existsSync(indexPath)) fail(`the generator wrote no ${indexPath}`);
  return { indexPath, html: readFileSync(indexPath, 'utf8') };
}

const started = Date.now();
const document = await parseSpec();
const channels = document.channels().all();
const operations = document.operations().all();
const messageNames = [...new Set(document.messages().all().map((m) => m.name()))].sort();
if (messageNames.length === 0) fail('the parsed document has no messages');
for (const message of document.messages().all()) {
  // The Avro schema parser must have turned the referenced .avsc into the envelope schema, whose
  // `payload` union has one branch per event, named after it (the branch record name is its id).
  if (!message.schemaFormat().startsWith('application/vnd.apache.avro')) {
    fail(`message ${message.name()} payload is not Avro (${message.schemaFormat()})`);
  }
  const branches = (message.payload()?.properties()?.payload?.oneOf() ?? []).map((s) => s.id());
  if (!branches.includes(message.name())) {
    fail(`message ${message.name()} is not a branch of the parsed envelope union [${branches.join(', ')}]`);
  }
}

const { indexPath, html } = await render(document);
// Only the server-rendered markup counts, not the copy of the document embedded for hydration.
const markup = html.replace(/<script\b[\s\S]*?<\/script>/gi, '');
const expected = [...messageNames, ...channels.map((c) => c.address())];
const missing = expected.filter((name) => !markup.includes(name));
if (missing.length) fail(`${indexPath} does not mention: ${missing.join(', ')}`);

console.log(
  `asyncapi check OK: ${path.relative(process.cwd(), specPath) || specPath} is AsyncAPI ${document.version()} ` +
    `(${channels.length} channels: ${channels.map((c) => c.address()).join(', ')}; ` +
    `${operations.length} operations; messages: ${messageNames.join(', ')}); ` +
    `rendered ${path.relative(process.cwd(), indexPath)} (${html.length} bytes) ` +
    `in ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
