// Entry point of the overlay thread (overlay-renderer.ts): renders overlay PNGs (workers/overlay/render.ts)
// off the worker's main event loop, whose per-pixel mask loops would otherwise hold up lock renewal.
import { parentPort } from 'node:worker_threads';
import type { PerceptionResult } from '../../contracts/result.js';
import { renderOverlay } from '../overlay/render.js';

export interface RenderRequest {
  id: number;
  image: Uint8Array;
  result: PerceptionResult;
}
export type RenderReply = { id: number; ok: true; png: Uint8Array } | { id: number; ok: false; error: string };

const port = parentPort!;
port.on('message', (req: RenderRequest) => {
  renderOverlay(req.image, req.result).then(
    (png) => port.postMessage({ id: req.id, ok: true, png } satisfies RenderReply, [png.buffer as ArrayBuffer]),
    (e: unknown) => port.postMessage({ id: req.id, ok: false, error: (e as Error).message } satisfies RenderReply),
  );
});
