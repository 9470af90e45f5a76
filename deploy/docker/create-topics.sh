#!/usr/bin/env bash
# One-shot topic creation for docker-compose.yml (runs in the apache/kafka image).
#
# Topic names, partitions and replication come from the same STREAMPROC_TOPICS_*
# variables the workers read, so both always agree. Features and outcomes get
# the same partition count: the worker's state tables are co-partitioned with
# both topics, and a mismatch stops the worker (PartitionsMismatch). An existing
# topic with another partition count is an error here rather than later.
set -euo pipefail

bootstrap="${STREAMPROC_KAFKA_BOOTSTRAP_SERVERS:-kafka:9092}"
partitions="${STREAMPROC_TOPICS_PARTITIONS:-8}"
replication="${STREAMPROC_TOPICS_REPLICATION_FACTOR:-1}"
topics_sh=/opt/kafka/bin/kafka-topics.sh

create() {
    local topic="$1"
    shift
    "$topics_sh" --bootstrap-server "$bootstrap" --create --if-not-exists \
        --topic "$topic" --partitions "$partitions" --replication-factor "$replication" "$@"
    local actual
    actual="$("$topics_sh" --bootstrap-server "$bootstrap" --describe --topic "$topic" \
        | grep -o 'PartitionCount: *[0-9]*' | grep -o '[0-9]*$')"
    if [[ "$actual" != "$partitions" ]]; then
        echo "topic $topic has $actual partitions, expected $partitions" >&2
        echo "(delete it or the kafka-data volume: docker compose down -v)" >&2
        exit 1
    fi
}

create "${STREAMPROC_TOPICS_FEATURES:-features}"
create "${STREAMPROC_TOPICS_OUTCOMES:-outcomes}"
create "${STREAMPROC_TOPICS_ALERTS:-drift-alerts}"
create "${STREAMPROC_TOPICS_DEAD_LETTERS:-streamproc-dead-letters}" --config retention.ms=604800000
echo "topics ready on $bootstrap ($partitions partitions, replication $replication)"
