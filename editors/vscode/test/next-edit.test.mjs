// textDocument/copilotInlineEdit as the extension asks for it (src/nextEdit.ts), started with the
// extension's own settings: the server's next edit comes back in the shape the extension reads
// (config.firstInlineEdit), applies to the text, and `stagecoder.nextEdit.enabled: false` turns
// it off on the server too.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { stubModel } from './model-stub.mjs';
import config from '../out/config.js';
import { applyEdits, startServer, workspace } from './harness.mjs';

const BEFORE = 'import math\n\n\ndef area(r):\n    return math.pi * r * r\n\n\ndef perimeter(r):\n    return 2 * math.pi * r\n';
const AFTER = BEFORE.replace('def area(r):', 'def area(radius):').replace('math.pi * r * r', 'math.pi * radius * radius');
// The model's rewrite of the editable region (lines 5-12 of AFTER, around the cursor on line 7).
const REGION_NOW = AFTER.split('\n').slice(5).join('\n');
const ANSWER = '```python\n' + REGION_NOW.replace('perimeter(r)', 'perimeter(radius)').replace('pi * r\n', 'pi * radius\n') + '```';
const CURSOR = { line: 7, character: 'def perimeter('.length };

async function withServer(overrides, body) {
  const model = await stubModel(ANSWER);
  const ws = workspace({ 'shapes.py': BEFORE });
  const server = await startServer({
    root: ws.root,
    overrides: { 'chat.url': model.url, 'nextEdit.debounceMs': 0, ...overrides },
  });
  const uri = ws.uri('shapes.py');
  await server.open(uri, 'python', BEFORE);
  await server.edit(uri, { start: { line: 3, character: 9 }, end: { line: 3, character: 10 } }, 'radius');
  await server.edit(uri, { start: { line: 4, character: 20 }, end: { line: 4, character: 25 } }, 'radius * radius');
  try {
    await body(server, uri, model);
  } finally {
    await server.stop();
    await model.close();
    ws.dispose();
  }
}

test('the next edit round-trips with the extension settings and applies', async () => {
  await withServer({}, async (server, uri, model) => {
    assert.equal(server.init.capabilities.experimental?.copilotInlineEdit, true);
    const result = await server.conn.sendRequest(config.INLINE_EDIT_METHOD, {
      textDocument: { uri, version: 3 },
      position: CURSOR,
    });
    const edit = config.firstInlineEdit(result, uri, 3);
    assert.ok(edit, `no edit in ${JSON.stringify(result)}`);
    assert.equal(edit.text, 'radius):\n    return 2 * math.pi * radius');
    const text = applyEdits(AFTER, [{ range: edit.range, newText: edit.text }]);
    assert.equal(text, AFTER.replace('perimeter(r)', 'perimeter(radius)').replace('pi * r\n', 'pi * radius\n'));
    // The prompt carried the edit history the extension's changes made.
    const chat = model.requests.find((r) => r.url === '/v1/chat/completions');
    assert.ok(chat.body.messages[1].content.includes('+def area(radius):'));
    // A stale version is answered with no edit, and the extension's reader drops a mismatch too.
    assert.equal(config.firstInlineEdit(result, uri, 4), undefined);
    await server.conn.sendNotification(config.DID_SHOW_INLINE_EDIT, { item: edit });
  });
});

test('stagecoder.nextEdit.enabled false: no edit and no model call', async () => {
  await withServer({ 'nextEdit.enabled': false }, async (server, uri, model) => {
    const result = await server.conn.sendRequest(config.INLINE_EDIT_METHOD, {
      textDocument: { uri, version: 3 },
      position: CURSOR,
    });
    assert.deepEqual(result, { edits: [] });
    assert.equal(model.requests.filter((r) => r.url?.startsWith('/v1/chat')).length, 0);
  });
});

test('debounce setting is read with a safe default', () => {
  assert.equal(config.nextEditDelay(() => 250), 250);
  assert.equal(config.nextEditDelay(() => 'soon'), 100);
});
