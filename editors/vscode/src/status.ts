/** The status bar item: ready / working / model unreachable / stopped; click for details. */

import * as vscode from 'vscode';

import type { ServerState } from './config';

export type State = ServerState | 'starting' | 'stopped';

const LOOK: Record<State, { icon: string; label: string; background?: string }> = {
  starting: { icon: '$(loading~spin)', label: 'starting' },
  ready: { icon: '$(sparkle)', label: 'ready' },
  working: { icon: '$(sync~spin)', label: 'working' },
  unreachable: {
    icon: '$(warning)',
    label: 'model unreachable',
    background: 'statusBarItem.warningBackground',
  },
  stopped: { icon: '$(circle-slash)', label: 'stopped', background: 'statusBarItem.errorBackground' },
};

export class StatusItem implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private base: State = 'starting';
  private detail = '';
  private inFlight = 0;

  constructor(command: string) {
    this.item = vscode.window.createStatusBarItem('stagecoder.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'stagecoder';
    this.item.command = command;
    this.render();
    this.item.show();
  }

  /** The state the server reported (or the client observed), with a sentence for the tooltip. */
  set(state: State, detail = ''): void {
    this.base = state;
    this.detail = detail;
    this.render();
  }

  get state(): State {
    return this.inFlight > 0 && this.base === 'ready' ? 'working' : this.base;
  }

  get message(): string {
    return this.detail;
  }

  /** Wraps a request so the item says "working" while it runs. */
  async track<T>(work: () => Thenable<T> | T): Promise<T> {
    this.inFlight += 1;
    this.render();
    try {
      return await work();
    } finally {
      this.inFlight -= 1;
      this.render();
    }
  }

  private render(): void {
    const state = this.state;
    const look = LOOK[state];
    this.item.text = `${look.icon} stagecoder`;
    this.item.backgroundColor = look.background ? new vscode.ThemeColor(look.background) : undefined;
    const tooltip = new vscode.MarkdownString(`**stagecoder**: ${look.label}`);
    if (this.detail) {
      tooltip.appendMarkdown('\n\n');
      tooltip.appendText(this.detail);
    }
    tooltip.appendMarkdown('\n\nClick for details.');
    this.item.tooltip = tooltip;
    this.item.accessibilityInformation = { label: `stagecoder ${look.label}` };
  }

  dispose(): void {
    this.item.dispose();
  }
}

/** Human label of a state, for the details message. */
export function label(state: State): string {
  return LOOK[state].label;
}
