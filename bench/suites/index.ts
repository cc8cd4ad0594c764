/** Every suite, in the order `npm run bench` runs them. Add yours here (see bench/README.md). */
import type { Suite } from '../suite.ts';
import { suite as ingest } from './ingest.ts';
import { suite as latency } from './latency.ts';
import { suite as fanout } from './fanout.ts';
import { suite as bandwidth } from './bandwidth.ts';
import { suite as scaling } from './scaling.ts';
import { suite as state } from './state.ts';
import { suite as kafkaIngest } from './kafka-ingest.ts';
import { suite as security } from './security.ts';
import { suite as delivery } from './delivery.ts';
import { suite as scaleout } from './scaleout.ts';

export const SUITES: readonly Suite[] = [ingest, latency, fanout, bandwidth, scaling, state, kafkaIngest, security, delivery, scaleout];
