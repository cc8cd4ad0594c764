#!/usr/bin/env bash
# Pre-fetches the jars of the test Kafka broker (test/support/kafka/pom.xml, via
# `mvn dependency:copy-dependencies`) into its cache, so no test has to pay for the
# download or time out on it. Idempotent: returns at once when the cache is complete.
# Cache: $TIDEWIRE_KAFKA_CACHE/kafka-<version>/libs, default ~/.cache/tidewire/kafka-<version>/libs.
#
# It calls the harness's own ensureKafkaJars() rather than repeating the mvn command,
# so the cache path, the completeness marker and the version can never drift apart.
# Needs node_modules (tsx), Java and Maven.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

exec node --import tsx --input-type=module -e "
import { ensureKafkaJars, kafkaJarsCached, KAFKA_VERSION } from './test/support/kafka-broker.ts';
const cached = kafkaJarsCached();
const libs = await ensureKafkaJars((m) => console.log('[kafka-jars] ' + m));
console.log('[kafka-jars] Kafka ' + KAFKA_VERSION + ' jars ' + (cached ? 'already cached' : 'fetched') + ' in ' + libs);
"
