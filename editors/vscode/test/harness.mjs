// Starts `stagecoder serve` the way the extension does and speaks LSP to it like VS Code would.
//
// The command line and initializationOptions come from the extension's own compiled module
// (out/config.js) fed with the defaults that package.json declares, so a change to either shows
// up here. The capabilities are the ones vscode-languageclient 11 fills in for the features the
// server uses (see node_modules/vscode-languageclient/lib/common/*.js fillClientCapabilities).

import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import {
  ConfigurationRequest,
  createProtocolConnection,
  DiagnosticRefreshRequest,
  DidChangeTextDocumentNotification,
  DidCloseTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  LogMessageNotification,
  RegistrationRequest,
  ShowMessageNotification,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  UnregistrationRequest,
  WorkDoneProgressCreateRequest,
} from 'vscode-languageserver-protocol/node';

import config from '../out/config.js';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8'));
const PROPERTIES = pkg.contributes.configuration.properties;

/** A `Read` (see src/config.ts) over package.json's defaults plus user overrides. */
export function configReader(overrides = {}) {
  return (key, languageId) => {
    const scoped = languageId ? overrides[`[${languageId}]`] : undefined;
    if (scoped && key in scoped) {
      return scoped[key];
    }
    if (key in overrides) {
      return overrides[key];
    }
    const property = PROPERTIES[`${config.SECTION}.${key}`];
    if (!property) {
      throw new Error(`stagecoder.${key} is not declared in package.json`);
    }
    return property.default;
  };
}

/** What vscode-languageclient 11 announces for the features stagecoder uses. */
export const VSCODE_CAPABILITIES = {
  general: {
    positionEncodings: ['utf-16'],
    staleRequestSupport: { cancel: true, retryOnContentModified: [] },
    regularExpressions: { engine: 'ECMAScript', version: 'ES2020' },
    markdown: { parser: 'marked', version: '1.1.0' },
  },
  window: {
    workDoneProgress: true,
    showMessage: { messageActionItem: { additionalPropertiesSupport: true } },
    showDocument: { support: true },
  },
  workspace: {
    configuration: true,
    workspaceFolders: true,
    didChangeConfiguration: { dynamicRegistration: true },
    diagnostics: { refreshSupport: true },
    workspaceEdit: { documentChanges: true, resourceOperations: ['create', 'rename', 'delete'] },
  },
  textDocument: {
    synchronization: { dynamicRegistration: true, willSave: true, willSaveWaitUntil: true, didSave: true },
    inlineCompletion: { dynamicRegistration: true },
    codeAction: {
      dynamicRegistration: true,
      isPreferredSupport: true,
      disabledSupport: true,
      dataSupport: true,
      resolveSupport: { properties: ['edit', 'command'] },
      codeActionLiteralSupport: {
        codeActionKind: {
          valueSet: [
            '',
            'quickfix',
            'refactor',
            'refactor.extract',
            'refactor.inline',
            'refactor.move',
            'refactor.rewrite',
            'source',
            'source.organizeImports',
            'notebook',
          ],
        },
      },
      honorsChangeAnnotations: true,
      documentationSupport: true,
    },
    diagnostic: {
      dynamicRegistration: true,
      relatedInformation: true,
      codeDescriptionSupport: true,
      dataSupport: true,
      relatedDocumentSupport: false,
      markupMessageSupport: false,
    },
    publishDiagnostics: { relatedInformation: true, versionSupport: false, dataSupport: true },
  },
};

/** A temporary workspace folder holding `files` ({relative path: text}). */
export function workspace(files = {}) {
  const root = mkdtempSync(join(tmpdir(), 'stagecoder-vscode-'));
  for (const [name, text] of Object.entries(files)) {
    const path = join(root, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }
  return {
    root,
    uri: (name) => pathToFileURL(join(root, name)).href,
    dispose: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Resolves when `predicate()` is truthy; rejects with `what` after `timeoutMs`. Bounded polling. */
export async function waitFor(predicate, what, timeoutMs = 10_000, stepMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

/** Applies LSP TextEdits (positions in UTF-16 code units, like VS Code) to `text`. */
export function applyEdits(text, edits) {
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\n') {
      lineStarts.push(i + 1);
    }
  }
  const offset = ({ line, character }) =>
    line >= lineStarts.length ? text.length : Math.min(lineStarts[line] + character, text.length);
  const sorted = [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start));
  let out = text;
  for (const edit of sorted) {
    out = out.slice(0, offset(edit.range.start)) + edit.newText + out.slice(offset(edit.range.end));
  }
  return out;
}

/** The TextEdits of a WorkspaceEdit for one document URI (`changes` or `documentChanges`). */
export function editsFor(workspaceEdit, uri) {
  if (!workspaceEdit) {
    return [];
  }
  const edits = [...(workspaceEdit.changes?.[uri] ?? [])];
  for (const change of workspaceEdit.documentChanges ?? []) {
    if (change.textDocument?.uri === uri) {
      edits.push(...change.edits);
    }
  }
  return edits;
}

/** The path `command` runs (searched on PATH unless it names a path), or undefined. */
export function findExecutable(command) {
  const candidates = command.includes(sep)
    ? [command]
    : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, command));
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return statSync(path).isFile();
    } catch {
      return false;
    }
  });
}

/**
 * Run once before the suite (test/preflight.mjs, npm's pretest): without the server on PATH every
 * test would fail on its own with `spawn stagecoder ENOENT`, so say once what to install.
 */
export function requireServer() {
  const exe = config.serverExecutable(configReader());
  if (exe instanceof Error) {
    return `stagecoder: ${exe.message}`;
  }
  if (findExecutable(exe.command) === undefined) {
    return `npm test starts \`${exe.command} serve\`, but \`${exe.command}\` is not on PATH: from the ` +
      "repository root run `python3 -m venv .venv && .venv/bin/pip install -e .` and put .venv/bin on PATH";
  }
  return undefined;
}

/**
 * Spawns the server with the extension's command line and initializes it with the extension's
 * initializationOptions. `overrides` are user settings (`{'completion.url': ...}`).
 */
export async function startServer({ overrides = {}, root } = {}) {
  const read = configReader(overrides);
  const exe = config.serverExecutable(read);
  if (exe instanceof Error) {
    throw exe;
  }
  const proc = spawn(exe.command, exe.args, { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr = [];
  proc.stderr.on('data', (chunk) => stderr.push(chunk));
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const spawnError = new Promise((_, reject) => proc.on('error', reject));

  const conn = createProtocolConnection(new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));
  const shown = [];
  const logged = [];
  const statuses = [];
  const configurationRequests = [];
  conn.onNotification(ShowMessageNotification.type, (params) => shown.push(params));
  conn.onNotification(LogMessageNotification.type, (params) => logged.push(params));
  conn.onNotification(config.STATUS_METHOD, (params) => statuses.push(params));
  conn.onNotification('$/progress', () => {});
  conn.onRequest(ConfigurationRequest.type, (params) => {
    configurationRequests.push(params);
    // What the extension's workspace.configuration middleware answers.
    return params.items.map((item) => (item.section === config.SECTION ? config.serverSettings(read) : null));
  });
  conn.onRequest(WorkDoneProgressCreateRequest.type, () => null);
  conn.onRequest(RegistrationRequest.type, () => null);
  conn.onRequest(UnregistrationRequest.type, () => null);
  conn.onRequest(DiagnosticRefreshRequest.type, () => null);
  conn.listen();

  const rootUri = root ? pathToFileURL(root).href : null;
  const init = await Promise.race([
    spawnError,
    conn.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      clientInfo: { name: 'Visual Studio Code', version: '1.91.0' },
      locale: 'en',
      rootUri,
      workspaceFolders: rootUri ? [{ uri: rootUri, name: 'workspace' }] : null,
      capabilities: VSCODE_CAPABILITIES,
      initializationOptions: config.serverSettings(read),
    }),
  ]);
  await conn.sendNotification(InitializedNotification.type, {});

  const versions = new Map();
  return {
    conn,
    init,
    proc,
    read,
    shown,
    logged,
    statuses,
    configurationRequests,
    stderr: () => Buffer.concat(stderr).toString('utf8'),
    open(uri, languageId, text) {
      versions.set(uri, 1);
      return conn.sendNotification(DidOpenTextDocumentNotification.type, {
        textDocument: { uri, languageId, version: 1, text },
      });
    },
    /** Replaces the whole text of `uri` (a full-text change, as a document edit from VS Code). */
    replace(uri, text) {
      const version = (versions.get(uri) ?? 1) + 1;
      versions.set(uri, version);
      return conn.sendNotification(DidChangeTextDocumentNotification.type, {
        textDocument: { uri, version },
        contentChanges: [{ text }],
      });
    },
    /** An incremental change, as VS Code sends for typing. */
    edit(uri, range, text) {
      const version = (versions.get(uri) ?? 1) + 1;
      versions.set(uri, version);
      return conn.sendNotification(DidChangeTextDocumentNotification.type, {
        textDocument: { uri, version },
        contentChanges: [{ range, text }],
      });
    },
    close(uri) {
      return conn.sendNotification(DidCloseTextDocumentNotification.type, { textDocument: { uri } });
    },
    /** shutdown + exit, and the process must end by itself within a few seconds. */
    async stop() {
      try {
        await Promise.race([
          conn.sendRequest(ShutdownRequest.type),
          new Promise((_, reject) => setTimeout(() => reject(new Error('shutdown timed out')), 5_000)),
        ]);
        await conn.sendNotification(ExitNotification.type);
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
        const result = await exited;
        clearTimeout(timer);
        return result;
      } finally {
        conn.dispose();
        proc.kill('SIGKILL');
      }
    },
  };
}
