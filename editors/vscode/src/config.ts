/**
 * What the extension sends to the server, computed from the user's settings.
 *
 * No `vscode` import here: the wire test (test/*.test.mjs) loads this compiled module to start
 * `stagecoder serve` with exactly the command line and initializationOptions that the extension
 * uses. Values pass through unvalidated on purpose: the server validates every key and shows one
 * message naming a bad one, so the extension never second-guesses it.
 */

/** The configuration section, both in VS Code (`stagecoder.*`) and for workspace/configuration. */
export const SECTION = 'stagecoder';

/** VS Code languageIds the server has grammars for (analysis/documents/languages.py). */
export const LANGUAGES: readonly string[] = [
  'python',
  'javascript',
  'javascriptreact',
  'typescript',
  'typescriptreact',
  'go',
  'rust',
  'java',
  'c',
  'cpp',
];

/** Reads `stagecoder.<key>`, for one language when `languageId` is given. */
export type Read = (key: string, languageId?: string) => unknown;

/** The camelCase settings mapping of analysis/settings.py, section `stagecoder`. */
export interface ServerSettings {
  enable: boolean;
  disabledLanguages: string[];
  completion: { url: unknown; model: unknown; maxTokens: unknown };
  chat: { url: unknown; model: unknown };
  stages: { boundaryChecks: unknown };
  nextEdit: { enabled: unknown; model: unknown; format: unknown; debounceMs: unknown };
}

/** A process to spawn. */
export interface Executable {
  command: string;
  args: string[];
}

/** initializationOptions and the answer to workspace/configuration for section `stagecoder`. */
export function serverSettings(read: Read): ServerSettings {
  // `stagecoder.enable` is language-overridable; the server takes a list of languages to skip.
  const disabledLanguages = LANGUAGES.filter((id) => read('enable', id) === false);
  return {
    enable: disabledLanguages.length < LANGUAGES.length,
    disabledLanguages,
    completion: {
      url: read('completion.url'),
      model: read('completion.model'),
      maxTokens: read('completion.maxTokens'),
    },
    chat: { url: read('chat.url'), model: read('chat.model') },
    stages: { boundaryChecks: read('stages.boundaryChecks') },
    nextEdit: {
      enabled: read('nextEdit.enabled'),
      model: read('nextEdit.model'),
      format: read('nextEdit.format'),
      // The extension waits `nextEdit.debounceMs` itself before it asks (nextEdit.ts), so the
      // server must not wait again.
      debounceMs: 0,
    },
  };
}

/** The argv prefix from `stagecoder.server.command`, or an Error that names the setting. */
function commandPrefix(read: Read): string[] | Error {
  const value = read('server.command');
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    !value.every((part): part is string => typeof part === 'string' && part.length > 0)
  ) {
    return new Error(
      `stagecoder.server.command must be a non-empty list of strings, e.g. ["stagecoder"]; ` +
        `got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** How the language server is started: `<command...> serve --stdio`. */
export function serverExecutable(read: Read): Executable | Error {
  const prefix = commandPrefix(read);
  if (prefix instanceof Error) {
    return prefix;
  }
  const [command, ...rest] = prefix;
  return { command, args: [...rest, 'serve', '--stdio'] };
}

/** How a review runs: `<command...> review --format json PATH...`. */
export function reviewExecutable(read: Read, paths: string[]): Executable | Error {
  const prefix = commandPrefix(read);
  if (prefix instanceof Error) {
    return prefix;
  }
  const [command, ...rest] = prefix;
  return { command, args: [...rest, 'review', '--format', 'json', ...paths] };
}

/** Method of the server's status notification (see README: "Status"). */
export const STATUS_METHOD = 'stagecoder/status';

export type ServerState = 'ready' | 'working' | 'unreachable';

/** Params of `stagecoder/status`. */
export interface StatusParams {
  state: ServerState;
  message?: string;
}

/** The params of a `stagecoder/status` notification, or undefined when they are malformed. */
export function parseStatus(params: unknown): StatusParams | undefined {
  if (typeof params !== 'object' || params === null) {
    return undefined;
  }
  const { state, message } = params as Record<string, unknown>;
  if (state !== 'ready' && state !== 'working' && state !== 'unreachable') {
    return undefined;
  }
  return typeof message === 'string' ? { state, message } : { state };
}

/** The server's next-edit request (Copilot's method, so Copilot-style clients work too). */
export const INLINE_EDIT_METHOD = 'textDocument/copilotInlineEdit';
/** Sent once an edit is drawn. */
export const DID_SHOW_INLINE_EDIT = 'textDocument/didShowInlineEdit';

export interface Position {
  line: number;
  character: number;
}

/** One next edit as the server sends it. */
export interface InlineEdit {
  text: string;
  range: { start: Position; end: Position };
  textDocument: { uri: string; version: number };
  command?: { title: string; command: string; arguments?: unknown[] };
}

function isPosition(value: unknown): value is Position {
  const p = value as Position;
  return typeof value === 'object' && value !== null && Number.isInteger(p.line) && Number.isInteger(p.character);
}

/** The first edit of a `copilotInlineEdit` result that applies to `uri` at `version`, or
 * undefined (no edit, a malformed one, or one for another version of the text). */
export function firstInlineEdit(result: unknown, uri: string, version: number): InlineEdit | undefined {
  const edits = (result as { edits?: unknown } | null)?.edits;
  if (!Array.isArray(edits) || edits.length === 0) {
    return undefined;
  }
  const edit = edits[0] as InlineEdit;
  if (
    typeof edit?.text !== 'string' ||
    !isPosition(edit.range?.start) ||
    !isPosition(edit.range?.end) ||
    edit.textDocument?.uri !== uri ||
    edit.textDocument?.version !== version
  ) {
    return undefined;
  }
  return edit;
}

/** How long to wait after typing before asking for a next edit (`stagecoder.nextEdit.debounceMs`). */
export function nextEditDelay(read: Read): number {
  const value = read('nextEdit.debounceMs');
  return typeof value === 'number' && value >= 0 ? value : 100;
}
