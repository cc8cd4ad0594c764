// A tiny React app on the tidewire SDK's hooks (client/react.ts). `npx vite build --config
// examples/react/vite.config.ts` builds it into examples/react/dist, served by a tidewire started
// with that folder as its static folder; `npx vite examples/react` runs it against :8080.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  oxc: { jsx: { runtime: 'automatic', importSource: 'react' } },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', copyPublicDir: false },
  server: {
    fs: { allow: [fileURLToPath(new URL('../..', import.meta.url))] },
    proxy: { '/ws': { target: 'ws://127.0.0.1:8080', ws: true } },
  },
});
