// Pull diagnostics, quick fixes (with codeAction/resolve) and refactors, as VS Code asks for them.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';

import {
  CodeActionKind,
  CodeActionRequest,
  CodeActionResolveRequest,
  DocumentDiagnosticReportKind,
  DocumentDiagnosticRequest,
} from 'vscode-languageserver-protocol/node';

import { applyEdits, editsFor, startServer, workspace } from './harness.mjs';

const BAD = [
  'def f(items=[]):', // line 0: SC303 mutable default (unsafe fix)
  '    return items',
  '',
  '',
  'def g(x):',
  '    if x is 1:', // line 5: SC305 `is` with a literal (unsafe fix: `==`)
  '        return 1',
  '    try:',
  '        return 2',
  '    finally:',
  '        print(x == float("nan"))', // line 10: SC306 comparison with NaN
  '',
].join('\n');

const REFACTOR = ['def area(width, height):', '    scale = 2', '    base = width * height', '    return base * scale', ''].join('\n');

let ws;
let server;

before(async () => {
  ws = workspace({ 'bad.py': BAD, 'shapes.py': REFACTOR });
  server = await startServer({ root: ws.root });
});

after(async () => {
  await server?.stop();
  ws?.dispose();
});

async function pull(uri, previousResultId) {
  return server.conn.sendRequest(DocumentDiagnosticRequest.type, {
    textDocument: { uri },
    identifier: 'stagecoder',
    ...(previousResultId ? { previousResultId } : {}),
  });
}

function pythonParses(text) {
  const result = spawnSync('python3', ['-c', 'import ast, sys; ast.parse(sys.stdin.read())'], { input: text });
  return result.status === 0;
}

function withCode(diagnostics, code) {
  return diagnostics.filter((d) => d.code === code);
}

test('pull diagnostics: mutable default, `is` with a literal, NaN comparison', async () => {
  const uri = ws.uri('bad.py');
  await server.open(uri, 'python', BAD);
  const report = await pull(uri);
  assert.equal(report.kind, DocumentDiagnosticReportKind.Full);
  const codes = report.items.map((d) => `${d.code}@${d.range.start.line}`).sort();
  assert.deepEqual(codes, ['SC303@0', 'SC305@5', 'SC306@10'], JSON.stringify(report.items));
  const [mutable] = withCode(report.items, 'SC303');
  assert.equal(mutable.source, 'stagecoder');
  // The range is the default value `[]`: characters 12-14 in UTF-16 (VS Code's encoding).
  assert.deepEqual(mutable.range, { start: { line: 0, character: 12 }, end: { line: 0, character: 14 } });
  assert.match(mutable.message, /shared between calls/);
  // Nothing changed: the same result id comes back as "unchanged".
  const again = await pull(uri, report.resultId);
  assert.equal(again.kind, DocumentDiagnosticReportKind.Unchanged);
  assert.equal(again.resultId, report.resultId);
});

test('the quick fix for `is 1` edits the document and clears its diagnostic', async () => {
  const uri = ws.uri('bad.py');
  const report = await pull(uri);
  const [diagnostic] = withCode(report.items, 'SC305');
  assert.ok(diagnostic, `no SC305 diagnostic: ${JSON.stringify(report.items)}`);
  const actions = await server.conn.sendRequest(CodeActionRequest.type, {
    textDocument: { uri },
    range: diagnostic.range,
    context: { diagnostics: [diagnostic], only: [CodeActionKind.QuickFix], triggerKind: 1 },
  });
  const fixes = (actions ?? []).filter((a) => a.kind === CodeActionKind.QuickFix);
  assert.ok(fixes.length >= 1, `no quick fix: ${JSON.stringify(actions)}`);
  let fix = fixes.find((a) => a.isPreferred) ?? fixes[0];
  assert.match(fix.title, /==/);
  if (!fix.edit) {
    fix = await server.conn.sendRequest(CodeActionResolveRequest.type, fix);
  }
  const edits = editsFor(fix.edit, uri);
  assert.ok(edits.length >= 1, `the fix has no edit for ${uri}: ${JSON.stringify(fix)}`);
  const fixed = applyEdits(BAD, edits);
  assert.equal(fixed, BAD.replace('if x is 1:', 'if x == 1:'));
  server.replace(uri, fixed);
  const after = await pull(uri);
  assert.equal(after.kind, DocumentDiagnosticReportKind.Full);
  assert.deepEqual(
    after.items.map((d) => d.code).sort(),
    ['SC303', 'SC306'],
    `after the fix:\n${fixed}\n${JSON.stringify(after.items)}`,
  );
});

test('refactor.extract turns selected statements into a function', async () => {
  const uri = ws.uri('shapes.py');
  await server.open(uri, 'python', REFACTOR);
  // The statement `base = width * height` on line 2.
  const range = { start: { line: 2, character: 4 }, end: { line: 2, character: 25 } };
  const actions = await server.conn.sendRequest(CodeActionRequest.type, {
    textDocument: { uri },
    range,
    context: { diagnostics: [], only: [CodeActionKind.Refactor], triggerKind: 1 },
  });
  const extracts = (actions ?? []).filter((a) => a.kind?.startsWith(CodeActionKind.RefactorExtract) && !a.disabled);
  assert.ok(extracts.length >= 1, `no enabled refactor.extract action: ${JSON.stringify(actions)}`);
  let action = extracts[0];
  if (!action.edit) {
    action = await server.conn.sendRequest(CodeActionResolveRequest.type, action);
  }
  const edits = editsFor(action.edit, uri);
  assert.ok(edits.length >= 1, `the refactor has no edit: ${JSON.stringify(action)}`);
  const refactored = applyEdits(REFACTOR, edits);
  assert.ok(pythonParses(refactored), `the refactored file does not parse:\n${refactored}`);
  const defs = refactored.split('\n').filter((line) => line.startsWith('def '));
  assert.equal(defs.length, 2, `expected a new function:\n${refactored}`);
  assert.match(refactored, /\n {4}base = \w+\(width, height\)\n/, refactored);
  assert.ok(refactored.includes('    return base * scale\n'), refactored);
});
