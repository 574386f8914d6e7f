// textDocument/inlineCompletion as VS Code's ghost text asks for it: model down, model slow
// (cancellation through a CancellationToken), and a model that answers.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  CancellationTokenSource,
  ExecuteCommandRequest,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
  LSPErrorCodes,
} from 'vscode-languageserver-protocol/node';

import { closedPort, silentEndpoint, stubModel } from './model-stub.mjs';
import config from '../out/config.js';
import { applyEdits, startServer, waitFor, workspace } from './harness.mjs';

const SOURCE = 'def add(a, b):\n    \n';
const CURSOR = { line: 1, character: 4 };

function params(uri, position = CURSOR, triggerKind = InlineCompletionTriggerKind.Automatic) {
  return { textDocument: { uri }, position, context: { triggerKind } };
}

function itemsOf(result) {
  if (result == null) return [];
  return Array.isArray(result) ? result : result.items;
}

async function withServer(overrides, body) {
  const ws = workspace({ 'calc.py': SOURCE });
  const server = await startServer({ root: ws.root, overrides });
  const uri = ws.uri('calc.py');
  await server.open(uri, 'python', SOURCE);
  try {
    await body(server, uri);
  } finally {
    await server.stop();
    ws.dispose();
  }
}

test('model down: empty result quickly, and the user is told once', async () => {
  const port = await closedPort();
  await withServer({ 'completion.url': `http://127.0.0.1:${port}` }, async (server, uri) => {
    for (let i = 0; i < 2; i++) {
      const started = Date.now();
      const result = await server.conn.sendRequest(InlineCompletionRequest.type, params(uri));
      assert.deepEqual(itemsOf(result), [], 'no completion without a model');
      assert.ok(Date.now() - started < 5_000, `answer took ${Date.now() - started} ms`);
    }
    // "tell the user once": one window/showMessage for the two requests, naming the endpoint.
    await waitFor(() => server.shown.length > 0, 'window/showMessage', 3_000).catch(() => {});
    assert.equal(server.shown.length, 1, `window/showMessage: ${JSON.stringify(server.shown)}`);
    assert.ok(server.shown[0].message.includes(`127.0.0.1:${port}`), server.shown[0].message);
  });
});

test('cancellation through a CancellationToken reaches the model request', async () => {
  const endpoint = await silentEndpoint();
  try {
    await withServer({ 'completion.url': endpoint.url, 'completion.model': 'stub-coder' }, async (server, uri) => {
      const source = new CancellationTokenSource();
      const pending = server.conn.sendRequest(InlineCompletionRequest.type, params(uri), source.token);
      let answered = false;
      const settled = pending.then(
        (value) => ({ value }),
        (error) => ({ error }),
      );
      void settled.then(() => {
        answered = true;
      });
      // The server has to be talking to the model before the cancel means anything.
      const early = await Promise.race([
        settled,
        waitFor(
          () => answered || endpoint.connections.some((c) => c.received.includes('HTTP/1.1')),
          'the model request',
          10_000,
        ).then(() => undefined),
      ]).catch((error) => ({ error: new Error(`the server never called the model: ${error.message}`) }));
      assert.equal(early, undefined, `answered before the model was asked: ${JSON.stringify(early)}`);
      const cancelledAt = Date.now();
      source.cancel();
      const outcome = await Promise.race([
        settled,
        new Promise((resolve) => setTimeout(() => resolve({ timeout: true }), 3_000)),
      ]);
      assert.ok(outcome.error, `expected a cancelled request, got ${JSON.stringify(outcome)}`);
      assert.equal(outcome.error.code, LSPErrorCodes.RequestCancelled);
      // The HTTP connection to the model must close (vLLM aborts the generation when it does).
      await waitFor(() => endpoint.connections.every((c) => c.closed), 'the model connection to close', 3_000);
      assert.ok(Date.now() - cancelledAt < 3_000);
      // And the server still answers.
      const settings = await server.conn.sendRequest(ExecuteCommandRequest.type, { command: 'stagecoder.showSettings' });
      assert.equal(settings.completion.url, endpoint.url);
    });
  } finally {
    await endpoint.close();
  }
});

test('a model that answers: ghost text with an exact range completes the function body', async () => {
  const model = await stubModel('return a + b');
  try {
    await withServer({ 'completion.url': model.url, 'completion.model': 'stub-coder' }, async (server, uri) => {
      const result = await server.conn.sendRequest(
        InlineCompletionRequest.type,
        params(uri, CURSOR, InlineCompletionTriggerKind.Invoked),
      );
      const items = itemsOf(result);
      assert.ok(items.length >= 1, `no items; model saw ${model.requests.length} requests: ` +
        JSON.stringify(model.requests.map((r) => `${r.method} ${r.url}`)));
      const item = items[0];
      const text = typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
      const range = item.range ?? { start: CURSOR, end: CURSOR };
      assert.ok(
        range.end.line === CURSOR.line && range.end.character >= CURSOR.character,
        `range ${JSON.stringify(range)} does not reach the cursor`,
      );
      const accepted = applyEdits(SOURCE, [{ range, newText: text }]);
      assert.equal(accepted.trimEnd(), 'def add(a, b):\n    return a + b');
      assert.ok(model.requests.some((r) => r.method === 'POST' && r.url.startsWith('/v1/')), 'the model was asked');
    });
  } finally {
    await model.close();
  }
});

test('model down: stagecoder/status "unreachable" for the status bar, in the shape it parses', async () => {
  const port = await closedPort();
  await withServer({ 'completion.url': `http://127.0.0.1:${port}` }, async (server, uri) => {
    await server.conn.sendRequest(InlineCompletionRequest.type, params(uri));
    const last = await waitFor(
      () => server.statuses.find((s) => s.state === 'unreachable'),
      `stagecoder/status unreachable (got ${JSON.stringify(server.statuses)})`,
      3_000,
    );
    const parsed = config.parseStatus(last);
    assert.equal(parsed?.state, 'unreachable');
    assert.ok(parsed.message?.includes(`127.0.0.1:${port}`), `status message: ${parsed.message}`);
  });
});
