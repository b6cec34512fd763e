// A local HTTP server standing in for the hosts users point image URLs at: a good image, oversized
// bodies (announced and streamed), a slow answer, redirects (to an image, the metadata address, a file: URL, in
// a loop), error statuses, an empty body and a connection reset.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ImageServer {
  url(path: string): string;
  hits: string[];
  close(): Promise<void>;
}

/** Path -> [status, Location]. */
const REDIRECTS: Record<string, [number, string]> = {
  '/to-metadata': [302, 'http://169.254.169.254/latest/meta-data/'],
  '/to-image': [301, '/image.png'],
  '/to-file': [302, 'file:///etc/passwd'],
  '/loop': [302, '/loop'],
};

export async function startImageServer(image: Buffer, maxBytes: number): Promise<ImageServer> {
  const hits: string[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    const redirect = REDIRECTS[req.url ?? ''];
    if (redirect) return void res.writeHead(redirect[0], { location: redirect[1] }).end();
    switch (req.url) {
      case '/image.png':
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': image.length }).end(image);
        return;
      case '/big-declared':
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': maxBytes * 4 });
        res.write(image);
        return; // never finishes: the client must give up on the header alone
      case '/big-streamed': {
        res.writeHead(200, { 'content-type': 'image/png' });
        const chunk = Buffer.alloc(64 * 1024, 1);
        let sent = 0;
        const pump = (): void => {
          while (sent <= maxBytes * 2) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
        return;
      }
      case '/slow': {
        const t = setTimeout(() => res.writeHead(200, { 'content-type': 'image/png' }).end(image), 5_000);
        timers.add(t);
        return;
      }
      case '/empty':
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': 0 }).end();
        return;
      case '/error':
        res.writeHead(500).end('boom');
        return;
      case '/reset':
        req.socket.destroy();
        return;
      default:
        res.writeHead(404).end('no');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    hits,
    async close() {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
