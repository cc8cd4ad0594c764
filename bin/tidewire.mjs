#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so `npx tidewire ...` works from a plain checkout.
import { register } from 'tsx/esm/api';

register();
await import('../services/cli/main.ts');
