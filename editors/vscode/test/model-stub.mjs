// Stand-ins for the model endpoint on 127.0.0.1, for the inline completion wire tests:
// - `closedPort()`: a port where nothing listens (model down);
// - `silentEndpoint()`: accepts connections and never answers (model slow), recording each
//   connection and when the server closes it (cancellation must reach the HTTP layer);
// - `stubModel(text)`: a minimal OpenAI-compatible server (vLLM's routes) whose completions are
//   always `text`, streamed or not, so the server's own pipeline has something to shape.

import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

/** A loopback port that was free a moment ago and has no listener now. */
export async function closedPort() {
  const server = createNetServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A TCP endpoint that reads requests and never answers. */
export async function silentEndpoint() {
  const connections = [];
  const server = createNetServer((socket) => {
    const record = { received: '', closed: false, socket };
    connections.push(record);
    socket.on('data', (chunk) => {
      record.received += chunk.toString('latin1');
    });
    socket.on('close', () => {
      record.closed = true;
    });
    socket.on('error', () => {});
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    connections,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const c of connections) c.socket?.destroy();
      }),
    server,
  };
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** An OpenAI-compatible endpoint that completes every prompt with `text`. */
export async function stubModel(text, { model = 'stub-coder' } = {}) {
  const requests = [];
  const sockets = new Set();
  const server = createHttpServer(async (req, res) => {
    const raw = await readBody(req);
    let body = {};
    try {
      body = raw ? JSON.parse(raw) : {};
    } catch {
      body = {};
    }
    requests.push({ method: req.method, url: req.url, body });
    const json = (status, value) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/v1/models') {
      return json(200, { object: 'list', data: [{ id: model, object: 'model', max_model_len: 16384 }] });
    }
    if (req.method === 'GET' && (path === '/health' || path === '/v1/health')) {
      return json(200, {});
    }
    if (req.method === 'POST' && path === '/tokenize') {
      const prompt = typeof body.prompt === 'string' ? body.prompt : JSON.stringify(body.messages ?? '');
      const count = Math.ceil(prompt.length / 4);
      return json(200, { count, max_model_len: 16384, tokens: Array.from({ length: count }, (_, i) => i) });
    }
    const chat = path === '/v1/chat/completions';
    if (req.method === 'POST' && (path === '/v1/completions' || chat)) {
      const n = Number.isInteger(body.n) && body.n > 0 ? body.n : 1;
      const choice = (index, finish) =>
        chat
          ? { index, delta: finish ? {} : { content: text }, message: { role: 'assistant', content: text }, finish_reason: finish }
          : { index, text: finish ? '' : text, finish_reason: finish, logprobs: null };
      const id = `cmpl-stub-${requests.length}`;
      const object = chat ? 'chat.completion' : 'text_completion';
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        for (let i = 0; i < n; i++) {
          res.write(`data: ${JSON.stringify({ id, object: `${object}.chunk`, model, choices: [choice(i, null)] })}\n\n`);
          res.write(`data: ${JSON.stringify({ id, object: `${object}.chunk`, model, choices: [choice(i, 'stop')] })}\n\n`);
        }
        res.end('data: [DONE]\n\n');
        return undefined;
      }
      const choices = Array.from({ length: n }, (_, i) => {
        const c = choice(i, 'stop');
        return chat ? { index: i, message: c.message, finish_reason: 'stop' } : { ...c, text };
      });
      return json(200, { id, object, model, choices, usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
    }
    return json(404, { error: { message: `stub: no route ${req.method} ${path}` } });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
