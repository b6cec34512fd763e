// GET /openapi.yaml (generated from the zod schemas at start-up) and GET /docs, Swagger UI served from the
// swagger-ui-dist package in node_modules, so the page renders offline (no CDN).
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Hono } from 'hono';
import type { AppEnv } from '../context.js';
import { ProblemError } from '../problem.js';
import { openApiYaml } from '../schemas/openapi.js';

const uiDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
};

const PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>MVP-LM Serve API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body></html>`;
const INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.yaml', dom_id: '#ui' });`;

export function docsRoutes(): Hono<AppEnv> {
  const yaml = openApiYaml();
  const r = new Hono<AppEnv>();
  r.get('/openapi.yaml', (c) => c.body(yaml, 200, { 'content-type': 'application/yaml; charset=utf-8' }));
  r.get('/docs', (c) => c.html(PAGE));
  r.get('/docs/init.js', (c) => c.body(INIT, 200, { 'content-type': 'text/javascript; charset=utf-8' }));
  r.get('/docs/:asset', async (c) => {
    const name = c.req.param('asset');
    const type = ASSETS[name];
    if (!type) throw new ProblemError(404, 'not-found', 'Not found', `no docs asset ${name}`);
    const body = await readFile(path.join(uiDir, name));
    return c.body(new Uint8Array(body), 200, { 'content-type': type, 'cache-control': 'public, max-age=86400' });
  });
  return r;
}
