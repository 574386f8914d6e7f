// The extension's pure modules: settings mapping, command lines, status params, review parser.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import config from '../out/config.js';
import findings from '../out/findings.js';
import { configReader } from './harness.mjs';

test('defaults from package.json make the settings mapping of analysis/settings.py', () => {
  assert.deepEqual(config.serverSettings(configReader()), {
    enable: true,
    disabledLanguages: [],
    completion: { url: 'http://127.0.0.1:8000', model: '', maxTokens: 128 },
    chat: { url: 'http://127.0.0.1:8000', model: '' },
    stages: { boundaryChecks: true },
    nextEdit: { enabled: true, model: '', format: 'deepseek-instruct', debounceMs: 0 },
  });
});

test('language-overridable enable becomes disabledLanguages; all off disables the server', () => {
  const some = config.serverSettings(configReader({ '[go]': { enable: false }, '[rust]': { enable: false } }));
  assert.deepEqual(some.disabledLanguages, ['go', 'rust']);
  assert.equal(some.enable, true);
  const all = config.serverSettings(configReader({ enable: false }));
  assert.equal(all.enable, false);
  assert.deepEqual(all.disabledLanguages, config.LANGUAGES);
});

test('server and review command lines', () => {
  assert.deepEqual(config.serverExecutable(configReader()), { command: 'stagecoder', args: ['serve', '--stdio'] });
  const venv = configReader({ 'server.command': ['python', '-m', 'lsp_server'] });
  assert.deepEqual(config.serverExecutable(venv), { command: 'python', args: ['-m', 'lsp_server', 'serve', '--stdio'] });
  assert.deepEqual(config.reviewExecutable(venv, ['/w']), {
    command: 'python',
    args: ['-m', 'lsp_server', 'review', '--format', 'json', '/w'],
  });
  for (const bad of ['stagecoder', [], [''], [1]]) {
    const result = config.serverExecutable(configReader({ 'server.command': bad }));
    assert.ok(result instanceof Error, `accepted ${JSON.stringify(bad)}`);
    assert.match(result.message, /stagecoder\.server\.command/);
  }
});

test('every setting the extension reads is declared in package.json', () => {
  // configReader throws for an undeclared key, so building everything proves the declarations.
  const read = configReader();
  config.serverSettings(read);
  config.serverExecutable(read);
});

test('stagecoder/status params are validated', () => {
  assert.deepEqual(config.parseStatus({ state: 'unreachable', message: 'no model at :8000' }), {
    state: 'unreachable',
    message: 'no model at :8000',
  });
  assert.deepEqual(config.parseStatus({ state: 'ready' }), { state: 'ready' });
  assert.equal(config.parseStatus({ state: 'sleeping' }), undefined);
  assert.equal(config.parseStatus(null), undefined);
});

test('review parser: LSP ranges are 0-based, people-style line/column are 1-based', () => {
  const lsp = findings.parseReview(
    JSON.stringify({
      findings: [
        {
          path: 'a.py',
          rule: 'mutable-default',
          severity: 'error',
          message: 'm',
          range: { start: { line: 0, character: 6 }, end: { line: 0, character: 14 } },
        },
      ],
    }),
  );
  assert.deepEqual(lsp, [
    { path: 'a.py', line: 0, character: 6, endLine: 0, endCharacter: 14, severity: 'error', rule: 'mutable-default', message: 'm' },
  ]);
  const flat = findings.parseReview(
    JSON.stringify([{ file: 'b.py', code: 'E1', message: 'n', line: 3, column: 5, endLine: 3, endColumn: 9 }]),
  );
  assert.deepEqual(flat, [
    { path: 'b.py', line: 2, character: 4, endLine: 2, endCharacter: 8, severity: 'warning', rule: 'E1', message: 'n' },
  ]);
  const ruffStyle = findings.parseReview(
    JSON.stringify({ results: [{ filename: 'c.py', code: 'X', message: 'o', location: { row: 2, column: 1 }, end_location: { row: 2, column: 4 } }] }),
  );
  assert.deepEqual(ruffStyle.map((f) => [f.line, f.character, f.endLine, f.endCharacter]), [[1, 0, 1, 3]]);
  const grouped = findings.parseReview(
    JSON.stringify({ files: [{ path: 'd.py', findings: [{ rule: 'r', message: 'p', start: { line: 1, column: 1 } }] }] }),
  );
  assert.deepEqual(grouped.map((f) => [f.path, f.line, f.character]), [['d.py', 0, 0]]);
  assert.throws(() => findings.parseReview('not json'), SyntaxError);
});
