/** Public API of the Kafka connector. */
export { KafkaConnector, type KafkaConnectorOptions, type KafkaConnectorStats, type PartitionStats } from './kafka-connector.ts';
export { KafkaConnectorError, type KafkaErrorCode } from './errors.ts';
export { KAFKA_DEFAULTS } from './kafka-options.ts';
export { kafkaSourceName, BAD_RECORD_REASONS, type BadRecordReason, type IgnoredReason } from './record-mapper.ts';
export { DEAD_LETTER_HEADERS } from './dead-letter.ts';
export { createKafkajsClient, type KafkajsClientOptions } from './kafkajs-client.ts';
export type * from './kafka-client.ts';
