/**
 * Next-edit suggestions in the editor: asks `textDocument/copilotInlineEdit` after a change and
 * draws the edit with decorations (Marketplace extensions cannot use VS Code's proposed inline
 * edit API): the text the edit removes struck through, the text it inserts as ghost text after
 * it, and the whole edit as a diff in the hover. Tab accepts (`stagecoder.acceptNextEdit`),
 * Escape dismisses; `stagecoder.nextEdit.enabled` turns it off. One edit is shown at a time.
 */

import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';

import { DID_SHOW_INLINE_EDIT, firstInlineEdit, INLINE_EDIT_METHOD, type InlineEdit, nextEditDelay, type Read } from './config';

const VISIBLE = 'stagecoder.nextEditVisible';

interface Shown {
  editor: vscode.TextEditor;
  edit: InlineEdit;
  range: vscode.Range;
}

export class NextEdits implements vscode.Disposable {
  private readonly removed = vscode.window.createTextEditorDecorationType({
    textDecoration: 'line-through',
    backgroundColor: new vscode.ThemeColor('diffEditor.removedTextBackground'),
  });
  private readonly inserted = vscode.window.createTextEditorDecorationType({
    after: { color: new vscode.ThemeColor('editorGhostText.foreground'), fontStyle: 'italic' },
  });
  private shown: Shown | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending: vscode.CancellationTokenSource | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly client: () => LanguageClient | undefined,
    private readonly read: Read,
  ) {
    this.subscriptions.push(
      vscode.workspace.onDidChangeTextDocument((event) => this.changed(event)),
      vscode.window.onDidChangeActiveTextEditor(() => this.dismiss()),
      vscode.commands.registerCommand('stagecoder.acceptNextEdit', () => this.accept()),
      vscode.commands.registerCommand('stagecoder.dismissNextEdit', () => this.dismiss()),
    );
  }

  private enabled(document: vscode.TextDocument): boolean {
    return this.read('nextEdit.enabled', document.languageId) !== false && this.read('enable', document.languageId) !== false;
  }

  private changed(event: vscode.TextDocumentChangeEvent): void {
    const editor = vscode.window.activeTextEditor;
    if (!editor || event.document !== editor.document || event.contentChanges.length === 0) {
      return;
    }
    this.dismiss();
    if (!this.enabled(event.document)) {
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.request(editor), nextEditDelay(this.read));
  }

  private async request(editor: vscode.TextEditor): Promise<void> {
    const client = this.client();
    if (!client?.isRunning()) {
      return;
    }
    this.pending?.cancel();
    const source = (this.pending = new vscode.CancellationTokenSource());
    const document = editor.document;
    const version = document.version;
    const position = editor.selection.active;
    let result: unknown;
    try {
      result = await client.sendRequest(
        INLINE_EDIT_METHOD,
        {
          textDocument: { uri: document.uri.toString(), version },
          position: { line: position.line, character: position.character },
        },
        source.token,
      );
    } catch {
      return; // cancelled or failed: the server tells the user about a model that is down
    }
    if (source.token.isCancellationRequested || document.version !== version) {
      return;
    }
    const edit = firstInlineEdit(result, document.uri.toString(), version);
    if (edit) {
      this.show(editor, edit);
      void client.sendNotification(DID_SHOW_INLINE_EDIT, { item: edit });
    }
  }

  private show(editor: vscode.TextEditor, edit: InlineEdit): void {
    const range = new vscode.Range(
      edit.range.start.line,
      edit.range.start.character,
      edit.range.end.line,
      edit.range.end.character,
    );
    const hover = new vscode.MarkdownString();
    hover.appendMarkdown('**stagecoder next edit** (Tab accepts, Escape dismisses)\n');
    hover.appendCodeblock(diffText(editor.document.getText(range), edit.text), 'diff');
    editor.setDecorations(this.removed, range.isEmpty ? [] : [{ range, hoverMessage: hover }]);
    const firstLine = edit.text.split('\n')[0];
    const more = edit.text.includes('\n') ? ' …' : '';
    editor.setDecorations(this.inserted, [
      {
        range: new vscode.Range(range.end, range.end),
        hoverMessage: hover,
        renderOptions: { after: { contentText: `${firstLine}${more}` } },
      },
    ]);
    this.shown = { editor, edit, range };
    void vscode.commands.executeCommand('setContext', VISIBLE, true);
  }

  async accept(): Promise<void> {
    const shown = this.shown;
    this.dismiss();
    if (!shown) {
      return;
    }
    const { editor, edit, range } = shown;
    if (editor.document.version !== edit.textDocument.version) {
      return; // the text changed under the suggestion
    }
    const applied = await editor.edit((builder) => builder.replace(range, edit.text));
    if (applied && edit.command) {
      void vscode.commands.executeCommand(edit.command.command, ...(edit.command.arguments ?? []));
    }
  }

  dismiss(): void {
    if (!this.shown) {
      return;
    }
    this.shown.editor.setDecorations(this.removed, []);
    this.shown.editor.setDecorations(this.inserted, []);
    this.shown = undefined;
    void vscode.commands.executeCommand('setContext', VISIBLE, false);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.pending?.cancel();
    this.dismiss();
    this.removed.dispose();
    this.inserted.dispose();
    for (const s of this.subscriptions) {
      s.dispose();
    }
  }
}

/** A two-sided diff of the replaced text, for the hover. */
function diffText(before: string, after: string): string {
  const minus = before.length ? before.split('\n').map((l) => `- ${l}`) : [];
  const plus = after.length ? after.split('\n').map((l) => `+ ${l}`) : [];
  return [...minus, ...plus].join('\n');
}
