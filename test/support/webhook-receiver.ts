// A local HTTP receiver for webhook tests. Each path answers from its script of responses (the last one
// repeats); every request is recorded with its headers and raw body.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type Reply = { status: number; headers?: Record<string, string>; delayMs?: number };

export class WebhookReceiver {
  readonly received: Received[] = [];
  private readonly scripts = new Map<string, Reply[]>();
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      this.received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString() });
      const script = this.scripts.get(path) ?? [{ status: 200 }];
      const reply = script.length > 1 ? script.shift()! : script[0]!;
      setTimeout(() => {
        res.writeHead(reply.status, reply.headers);
        res.end('ok');
      }, reply.delayMs ?? 0);
    });
  });

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Answers on `path` with these replies in order, then repeats the last one. */
  script(path: string, replies: Reply[]): string {
    this.scripts.set(path, [...replies]);
    return `${this.origin}${path}`;
  }

  on(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
