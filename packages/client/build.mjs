// Builds @tidewire/client: client/ and the floor it uses (core/) compiled into dist/.
import { fileURLToPath } from 'node:url';
import { compile } from '../build.mjs';

compile(fileURLToPath(new URL('.', import.meta.url)));
