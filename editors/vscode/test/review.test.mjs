// "stagecoder: Review workspace" runs the CLI with the extension's command line and reads its JSON.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

import config from '../out/config.js';
import findings from '../out/findings.js';
import { configReader, workspace } from './harness.mjs';

test('review --format json of a workspace becomes Problems-panel findings', (t) => {
  const ws = workspace({
    'pkg/bad.py': 'def f(items=[]):\n    return items\n',
    'pkg/good.py': 'def f(items=None):\n    return items or []\n',
  });
  t.after(() => ws.dispose());
  const exe = config.reviewExecutable(configReader(), [ws.root]);
  const run = spawnSync(exe.command, exe.args, { cwd: ws.root, encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.error, undefined, String(run.error));
  assert.doesNotMatch(run.stderr, /Traceback/, run.stderr);
  let parsed;
  try {
    parsed = findings.parseReview(run.stdout);
  } catch (error) {
    assert.fail(`not JSON (exit ${run.status}): ${run.stdout.slice(0, 500)}\n${run.stderr.slice(-1000)}`);
  }
  const inBad = parsed.filter((f) => f.path.endsWith('bad.py'));
  assert.equal(inBad.length, 1, JSON.stringify(parsed));
  assert.deepEqual(
    [inBad[0].rule, inBad[0].line, inBad[0].character, inBad[0].endLine, inBad[0].endCharacter],
    ['SC303', 0, 12, 0, 14],
  );
  assert.match(inBad[0].message, /shared between calls/);
  assert.equal(inBad[0].severity, 'warning');
  assert.deepEqual(parsed.filter((f) => f.path.endsWith('good.py')), []);
});
