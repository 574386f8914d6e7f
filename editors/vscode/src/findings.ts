/**
 * Reads the output of `stagecoder review --format json` into findings with 0-based positions.
 *
 * No `vscode` import: the wire test checks this parser against the real CLI. Accepted shapes
 * (the same as editors/nvim/lua/stagecoder/review.lua):
 * - the root is a list of findings, or an object with `findings` (or `results`), or an object
 *   with `files: [{path, findings: [...]}]`;
 * - a finding names its file with `path` (or `file`, `filename`, `uri`), its rule with `rule`
 *   (or `ruleId`, `code`, `id`), has a `message` and an optional `severity`/`level`;
 * - its place is an LSP `range` ({start: {line, character}}, 0-based), or `start`/`end`
 *   objects, or `location`/`endLocation` objects, or flat `line`/`column`/`endLine`/`endColumn`;
 *   the last three use `line`/`row` and `column`/`col`, 1-based as printed for people.
 */

export type Severity = 'error' | 'warning' | 'info' | 'hint';

/** One finding, positions 0-based (LSP style), the path as the CLI printed it. */
export interface Finding {
  path: string;
  line: number;
  character: number;
  endLine: number;
  endCharacter: number;
  severity: Severity;
  rule: string;
  message: string;
}

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function firstString(obj: Obj, keys: string[]): string | undefined {
  for (const key of keys) {
    const value = obj[key];
    if (typeof value === 'string' && value.length > 0) {
      return value;
    }
    if (typeof value === 'number') {
      return String(value);
    }
  }
  return undefined;
}

function firstNumber(obj: Obj, keys: string[]): number | undefined {
  for (const key of keys) {
    const value = obj[key];
    if (typeof value === 'number' && Number.isFinite(value)) {
      return value;
    }
  }
  return undefined;
}

/** A point as [line, character], 0-based; `base` is 1 for people-style line/column numbers. */
function point(obj: unknown, base: 0 | 1): [number, number] | undefined {
  if (!isObj(obj)) {
    return undefined;
  }
  if (typeof obj.character === 'number' && typeof obj.line === 'number') {
    return [obj.line, obj.character]; // an LSP Position is 0-based whatever the container says
  }
  const line = firstNumber(obj, ['line', 'row']);
  if (line === undefined) {
    return undefined;
  }
  const column = firstNumber(obj, ['column', 'col']) ?? base;
  return [Math.max(0, line - base), Math.max(0, column - base)];
}

function span(f: Obj): [number, number, number, number] {
  const candidates: [unknown, unknown, 0 | 1][] = [];
  if (isObj(f.range)) {
    candidates.push([f.range.start, f.range.end, 0]);
  }
  candidates.push([f.start, f.end, 1]);
  candidates.push([f.location, f.endLocation ?? f.end_location, 1]);
  if (isObj(f.location) && isObj(f.location.range)) {
    candidates.push([f.location.range.start, f.location.range.end, 0]);
  }
  for (const [startRaw, endRaw, base] of candidates) {
    const start = point(startRaw, base);
    if (start) {
      const end = point(endRaw, base) ?? start;
      return [start[0], start[1], end[0], end[1]];
    }
  }
  const flat = point(f, 1) ?? [0, 0];
  const endLine = firstNumber(f, ['endLine', 'end_line', 'endRow', 'end_row']);
  const endColumn = firstNumber(f, ['endColumn', 'end_column', 'endCol', 'end_col']);
  return [
    flat[0],
    flat[1],
    endLine !== undefined ? Math.max(0, endLine - 1) : flat[0],
    endColumn !== undefined ? Math.max(0, endColumn - 1) : flat[1],
  ];
}

function severity(value: unknown): Severity {
  const text = typeof value === 'string' ? value.toLowerCase() : '';
  if (text === 'error' || text === 'fatal') {
    return 'error';
  }
  if (text === 'info' || text === 'information' || text === 'note') {
    return 'info';
  }
  if (text === 'hint') {
    return 'hint';
  }
  return 'warning';
}

function finding(raw: unknown, inheritedPath?: string): Finding | undefined {
  if (!isObj(raw)) {
    return undefined;
  }
  let path = firstString(raw, ['path', 'file', 'filename', 'uri']) ?? inheritedPath;
  if (isObj(raw.location) && path === undefined) {
    path = firstString(raw.location, ['path', 'file', 'uri']);
  }
  if (path === undefined) {
    return undefined;
  }
  if (path.startsWith('file://')) {
    path = decodeURIComponent(path.slice('file://'.length));
  }
  const rawMessage = raw.message;
  const message =
    typeof rawMessage === 'string'
      ? rawMessage
      : isObj(rawMessage) && typeof rawMessage.text === 'string'
        ? rawMessage.text
        : '';
  const [line, character, endLine, endCharacter] = span(raw);
  return {
    path,
    line,
    character,
    endLine,
    endCharacter,
    severity: severity(raw.severity ?? raw.level),
    rule: firstString(raw, ['rule', 'ruleId', 'code', 'id']) ?? 'stagecoder',
    message,
  };
}

/** The findings of a review report; throws SyntaxError when `text` is not JSON. */
export function parseReview(text: string): Finding[] {
  const root: unknown = JSON.parse(text);
  const out: Finding[] = [];
  const take = (list: unknown, path?: string): void => {
    if (!Array.isArray(list)) {
      return;
    }
    for (const raw of list) {
      const parsed = finding(raw, path);
      if (parsed) {
        out.push(parsed);
      }
    }
  };
  if (Array.isArray(root)) {
    take(root);
  } else if (isObj(root)) {
    take(root.findings ?? root.results);
    if (Array.isArray(root.files)) {
      for (const file of root.files) {
        if (isObj(file)) {
          take(file.findings ?? file.results, firstString(file, ['path', 'file', 'uri']));
        }
      }
    }
  }
  return out;
}
