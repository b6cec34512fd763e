// Entry point of the overlay thread (overlay-renderer.ts): renders overlay PNGs (workers/overlay/render.ts)
// off the worker's main event loop, whose per-pixel mask loops would otherwise hold up lock renewal.
import type { PerceptionResult } from '../../contracts/result.js';
import { renderOverlay } from '../overlay/render.js';
import { serve } from '../threads/rpc.js';

/** The PNG arrives on the host as a Uint8Array (a Buffer does not survive the structured clone). */
export interface OverlayApi {
  render(image: Uint8Array, result: PerceptionResult): Promise<Uint8Array>;
}

serve<OverlayApi>({ render: renderOverlay });
