// Builds tidewire (server and CLI): core/, connectors/, services/ and the imported schemas
// compiled into dist/, every schema copied beside them, the dashboard built by Vite into
// dist/dashboard/dist (where services/cli/start.ts looks for it), and the `tidewire` command.
import { chmodSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, compile, runNode } from '../build.mjs';

const dist = compile(fileURLToPath(new URL('.', import.meta.url)));
cpSync(join(ROOT, 'schemas'), join(dist, 'schemas'), { recursive: true });

// Built straight into the package, so the checkout's dashboard/dist (what `npm start` serves) is
// never emptied under a running server; without source maps, which would ship the sources.
const vite = join(createRequire(join(ROOT, 'package.json')).resolve('vite/package.json'), '../bin/vite.js');
runNode(vite, ['build', '--config', join(ROOT, 'dashboard/vite.config.ts'), '--outDir', join(dist, 'dashboard/dist'), '--emptyOutDir', '--sourcemap', 'false', '--logLevel', 'warn']);

mkdirSync(join(dist, 'cli'));
writeFileSync(join(dist, 'cli/main.js'), "#!/usr/bin/env node\n// The `tidewire` command (services/cli/main.ts, compiled).\nimport '../services/cli/main.js';\n");
chmodSync(join(dist, 'cli/main.js'), 0o755);
