// Lifecycle and settings over the wire: what the extension relies on when it starts the server.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ExecuteCommandRequest } from 'vscode-languageserver-protocol/node';

import { startServer, waitFor, workspace } from './harness.mjs';

const SHOW_SETTINGS = 'stagecoder.showSettings';

test('capabilities the extension uses, in VS Code position encoding', async (t) => {
  const ws = workspace();
  const server = await startServer({ root: ws.root });
  t.after(() => ws.dispose());
  const caps = server.init.capabilities;
  assert.equal(server.init.serverInfo?.name, 'stagecoder');
  assert.equal(caps.positionEncoding ?? 'utf-16', 'utf-16');
  assert.equal(caps.textDocumentSync?.change, 2, 'incremental sync');
  assert.ok(caps.inlineCompletionProvider, 'inlineCompletionProvider advertised');
  assert.deepEqual(
    [...caps.codeActionProvider.codeActionKinds].sort(),
    ['quickfix', 'refactor.extract', 'refactor.rewrite'],
  );
  assert.equal(caps.codeActionProvider.resolveProvider, true);
  assert.equal(caps.diagnosticProvider?.identifier, 'stagecoder');
  const exit = await server.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, `server exit; stderr:\n${server.stderr()}`);
});

let ws;
let server;

before(async () => {
  ws = workspace({ 'pyproject.toml': '[project]\nname = "w"\n' });
  server = await startServer({
    root: ws.root,
    overrides: {
      'completion.url': 'http://127.0.0.1:9',
      'completion.maxTokens': 48,
      'stages.boundaryChecks': false,
      '[go]': { enable: false },
    },
  });
});

after(async () => {
  await server?.stop();
  ws?.dispose();
});

test("the extension's settings reach the server (initializationOptions and workspace/configuration)", async () => {
  // The server pulls section `stagecoder` after `initialized`; the answer is the same mapping.
  await waitFor(() => server.configurationRequests.length > 0, 'workspace/configuration');
  assert.deepEqual(server.configurationRequests[0].items.map((i) => i.section), ['stagecoder']);
  const settings = await server.conn.sendRequest(ExecuteCommandRequest.type, { command: SHOW_SETTINGS, arguments: [] });
  assert.equal(settings.completion.url, 'http://127.0.0.1:9');
  assert.equal(settings.completion.maxTokens, 48);
  assert.equal(settings.stages.boundaryChecks, false);
  assert.deepEqual(settings.disabledLanguages, ['go']);
  assert.equal(server.shown.length, 0, `unexpected messages: ${JSON.stringify(server.shown)}`);
});

test('an invalid setting gives one message naming the key; the other settings still apply', async (t) => {
  const bad = await startServer({
    root: ws.root,
    overrides: { 'completion.maxTokens': 'lots', 'completion.url': 'http://127.0.0.1:10' },
  });
  t.after(() => bad.stop());
  await waitFor(() => bad.configurationRequests.length > 0, 'workspace/configuration');
  const settings = await bad.conn.sendRequest(ExecuteCommandRequest.type, { command: SHOW_SETTINGS, arguments: [] });
  assert.equal(settings.completion.url, 'http://127.0.0.1:10');
  // Same bad value in initializationOptions and in workspace/configuration: still one message.
  assert.equal(bad.shown.length, 1, JSON.stringify(bad.shown));
  assert.match(bad.shown[0].message, /completion\.maxTokens/);
});
