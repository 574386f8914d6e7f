/** "stagecoder: Review workspace": run `stagecoder review --format json`, fill the Problems panel. */

import { spawn } from 'node:child_process';
import * as path from 'node:path';

import * as vscode from 'vscode';

import { type Read, reviewExecutable } from './config';
import { type Finding, parseReview, type Severity } from './findings';

const SEVERITY: Record<Severity, vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
  hint: vscode.DiagnosticSeverity.Hint,
};

interface Run {
  stdout: string;
  stderr: string;
  code: number | null;
}

function run(command: string, args: string[], cwd: string, token: vscode.CancellationToken): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const cancel = token.onCancellationRequested(() => child.kill());
    child.on('error', (error) => {
      cancel.dispose();
      reject(error);
    });
    child.on('close', (code) => {
      cancel.dispose();
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        code,
      });
    });
  });
}

function toDiagnostic(f: Finding): vscode.Diagnostic {
  const range = new vscode.Range(f.line, f.character, f.endLine, f.endCharacter);
  const diagnostic = new vscode.Diagnostic(range, f.message, SEVERITY[f.severity]);
  diagnostic.source = 'stagecoder';
  diagnostic.code = f.rule;
  return diagnostic;
}

/**
 * Reviews every workspace folder into `collection`. Files open in an editor are left to the
 * language server, whose pull diagnostics for them are live; the CLI's would be stale copies.
 */
export async function reviewWorkspace(read: Read, collection: vscode.DiagnosticCollection): Promise<void> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (folders.length === 0) {
    void vscode.window.showInformationMessage('stagecoder: open a folder to review it.');
    return;
  }
  const open = new Set(vscode.workspace.textDocuments.map((doc) => doc.uri.toString()));
  const outcome = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'stagecoder: reviewing workspace', cancellable: true },
    async (progress, token) => {
      const byFile = new Map<string, vscode.Diagnostic[]>();
      const files = new Set<string>();
      let total = 0;
      for (const folder of folders) {
        if (token.isCancellationRequested) {
          return undefined;
        }
        progress.report({ message: folder.name });
        const root = folder.uri.fsPath;
        const exe = reviewExecutable(read, [root]);
        if (exe instanceof Error) {
          throw exe;
        }
        const result = await run(exe.command, exe.args, root, token);
        if (token.isCancellationRequested) {
          return undefined;
        }
        let findings: Finding[];
        try {
          findings = parseReview(result.stdout);
        } catch {
          const tail = result.stderr.trim().split('\n').slice(-3).join(' ');
          throw new Error(`review of ${folder.name} failed (exit ${result.code}): ${tail || 'no output'}`);
        }
        for (const f of findings) {
          const uri = vscode.Uri.file(path.resolve(root, f.path)).toString();
          total += 1;
          files.add(uri);
          if (!open.has(uri)) {
            byFile.set(uri, [...(byFile.get(uri) ?? []), toDiagnostic(f)]);
          }
        }
      }
      return { byFile, total, files: files.size };
    },
  );
  if (outcome === undefined) {
    return; // cancelled: keep what the Problems panel showed before
  }
  collection.clear();
  for (const [uri, diagnostics] of outcome.byFile) {
    collection.set(vscode.Uri.parse(uri), diagnostics);
  }
  const { total, files } = outcome;
  const choice = await vscode.window.showInformationMessage(
    total === 0
      ? 'stagecoder: review found nothing.'
      : `stagecoder: ${total} finding${total === 1 ? '' : 's'} in ${files} file${files === 1 ? '' : 's'}.`,
    ...(total === 0 ? [] : ['Show Problems']),
  );
  if (choice === 'Show Problems') {
    await vscode.commands.executeCommand('workbench.actions.view.problems');
  }
}
