// Builds the dashboard into dashboard/dist, which `tidewire start` serves at `/` (index.html) and
// `/assets/*`. `npx vite dashboard` serves it for development against a tidewire on :8080.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  // Relative asset URLs keep the page working behind a proxy that mounts it below `/`.
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The server serves only index.html and assets/*: keep everything else out of dist.
    copyPublicDir: false,
    sourcemap: true,
  },
  server: {
    // The dashboard imports the SDK from ../client.
    fs: { allow: [fileURLToPath(new URL('..', import.meta.url))] },
    proxy: { '/ws': { target: 'ws://127.0.0.1:8080', ws: true } },
  },
});
