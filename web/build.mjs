// Builds the upload page into web/dist: index.html plus one bundle (assets/upload.js, .css) made by
// esbuild from web/src and the pinned npm packages, so the page loads nothing from a CDN.
// `make install` runs it (the web/dist/.built stamp); `node web/build.mjs` rebuilds by hand.

import { copyFile, mkdir, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const web = dirname(fileURLToPath(import.meta.url))
const dist = join(web, 'dist')

await rm(dist, { recursive: true, force: true })
await mkdir(join(dist, 'assets'), { recursive: true })
await build({
  entryPoints: { upload: join(web, 'src', 'main.js') },
  outdir: join(dist, 'assets'),
  bundle: true,
  format: 'esm',
  // Browsers with EventSource, fetch streaming and top-level await; Uppy 6 needs no older ones.
  target: ['chrome111', 'firefox115', 'safari16.4'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
})
await copyFile(join(web, 'index.html'), join(dist, 'index.html'))
