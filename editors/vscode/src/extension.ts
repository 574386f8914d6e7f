/**
 * The stagecoder extension: starts `stagecoder serve`, shows its state, offers two commands.
 *
 * Thin by design: completions, diagnostics and code actions are the language client's standard
 * features talking to the server; this file only wires settings, the status bar and commands.
 */

import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  type LanguageClientOptions,
  LanguageClient,
  type ServerOptions,
  State as ClientState,
} from 'vscode-languageclient/node';

import { LANGUAGES, parseStatus, type Read, SECTION, serverExecutable, serverSettings, STATUS_METHOD } from './config';
import { NextEdits } from './nextEdit';
import { reviewWorkspace } from './review';
import { label, StatusItem } from './status';

const SHOW_STATUS = 'stagecoder.showStatus';

let client: LanguageClient | undefined;

/** `stagecoder.<key>`, for one language when `languageId` is given. */
const read: Read = (key, languageId) =>
  vscode.workspace.getConfiguration(SECTION, languageId ? { languageId } : undefined).get(key);

function createClient(output: vscode.LogOutputChannel, status: StatusItem): LanguageClient {
  const exe = serverExecutable(read);
  if (exe instanceof Error) {
    throw exe;
  }
  // No `transport`: the args already end in `serve --stdio` (see config.ts), and the client
  // would append a second `--stdio`.
  const serverOptions: ServerOptions = { command: exe.command, args: exe.args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.flatMap((language) => [
      { scheme: 'file', language },
      { scheme: 'untitled', language },
    ]),
    outputChannel: output,
    initializationOptions: () => serverSettings(read),
    middleware: {
      workspace: {
        // The server asks for section `stagecoder`; answer with the same mapping as
        // initializationOptions (per-language `enable` folded into `disabledLanguages`).
        configuration: async (params, token, next) => {
          const answer = await next(params, token);
          if (!Array.isArray(answer)) {
            return answer;
          }
          return answer.map((value, i) => (params.items[i]?.section === SECTION ? serverSettings(read) : value));
        },
      },
      provideInlineCompletionItems: (document, position, context, token, next) =>
        status.track(() => next(document, position, context, token)),
    },
  };
  const created = new LanguageClient('stagecoder', 'stagecoder', serverOptions, clientOptions);
  created.onDidChangeState(({ newState }) => {
    if (newState === ClientState.Running) {
      status.set('ready');
    } else if (newState === ClientState.Stopped) {
      status.set('stopped', 'The language server is not running. Click to restart it.');
    } else {
      status.set('starting');
    }
  });
  created.onNotification(STATUS_METHOD, (params: unknown) => {
    const parsed = parseStatus(params);
    if (parsed) {
      status.set(parsed.state, parsed.message);
    }
  });
  return created;
}

async function start(output: vscode.LogOutputChannel, status: StatusItem): Promise<void> {
  status.set('starting');
  try {
    client = createClient(output, status);
    await client.start();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    status.set('stopped', `Could not start the server: ${message}`);
    output.error(`stagecoder: could not start the server: ${message}`);
    const choice = await vscode.window.showErrorMessage(
      `stagecoder: could not start the server (${message}). Is stagecoder installed, or is ` +
        '"stagecoder.server.command" set?',
      'Open Settings',
    );
    if (choice === 'Open Settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'stagecoder.server.command');
    }
  }
}

async function stop(): Promise<void> {
  const running = client;
  client = undefined;
  if (running) {
    await running.stop();
  }
}

async function showStatus(output: vscode.LogOutputChannel, status: StatusItem): Promise<void> {
  const exe = serverExecutable(read);
  const lines = [
    `stagecoder: ${label(status.state)}.`,
    status.message,
    `Server: ${exe instanceof Error ? exe.message : [exe.command, ...exe.args].join(' ')}.`,
    `Completion model: ${String(read('completion.url'))}.`,
  ].filter((line) => line.length > 0);
  const choice = await vscode.window.showInformationMessage(
    lines.join(' '),
    'Show Output',
    'Restart Server',
    'Open Settings',
  );
  if (choice === 'Show Output') {
    output.show();
  } else if (choice === 'Restart Server') {
    await vscode.commands.executeCommand('stagecoder.restartServer');
  } else if (choice === 'Open Settings') {
    await vscode.commands.executeCommand('workbench.action.openSettings', `@ext:stagecoder.stagecoder`);
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('stagecoder', { log: true });
  const status = new StatusItem(SHOW_STATUS);
  const reviewProblems = vscode.languages.createDiagnosticCollection('stagecoder-review');
  context.subscriptions.push(output, status, reviewProblems);
  context.subscriptions.push(new NextEdits(() => client, read));

  const restart = async (): Promise<void> => {
    await stop();
    await start(output, status);
  };

  context.subscriptions.push(
    vscode.commands.registerCommand('stagecoder.restartServer', restart),
    vscode.commands.registerCommand(SHOW_STATUS, () => showStatus(output, status)),
    vscode.commands.registerCommand('stagecoder.reviewWorkspace', async () => {
      try {
        await reviewWorkspace(read, reviewProblems);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        output.error(`stagecoder: ${message}`);
        void vscode.window.showErrorMessage(`stagecoder: ${message}`);
      }
    }),
    // An opened file gets live diagnostics from the server: drop the review's copy of them.
    vscode.workspace.onDidOpenTextDocument((doc) => reviewProblems.delete(doc.uri)),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('stagecoder.server')) {
        void restart(); // a new command line needs a new process
      } else if (event.affectsConfiguration(SECTION) && client?.isRunning()) {
        // The server answers by pulling section `stagecoder` (the middleware above); the
        // mapping rides along for servers that read the notification itself.
        void client.sendNotification(DidChangeConfigurationNotification.type, {
          settings: { [SECTION]: serverSettings(read) },
        });
      }
    }),
  );
  await start(output, status);
}

export function deactivate(): Thenable<void> | undefined {
  return stop();
}
