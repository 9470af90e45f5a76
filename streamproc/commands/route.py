"""``streamproc route``: deliver the alerts topic to Alertmanager and webhooks."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry

from streamproc.connection import aiokafka_options
from streamproc.errors import ConfigError
from streamproc.health import Health, HealthServer
from streamproc.kafka_errors import check_connection, translated
from streamproc.logs import setup_logging
from streamproc.route.alertmanager import AlertmanagerSink
from streamproc.route.delivery import Sink
from streamproc.route.metrics import RouteMetrics
from streamproc.route.router import DeadLetters, Router
from streamproc.route.webhook import WebhookSink
from streamproc.settings import Settings, load_settings
from streamproc.settings.route import RouteSettings

log = logging.getLogger(__name__)


def add_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "route",
        help="deliver alerts to Alertmanager and webhooks",
        description="Consume the alerts topic in its own consumer group (route.group_id) and "
        "deliver every alert to the configured sinks (route.alertmanager_urls, "
        "route.webhook_url), at least once, in order per model. See docs/operations.md.",
    )
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="port of /metrics, /healthz, /readyz (default: metrics.port)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if not settings.route.sinks:
        raise ConfigError(
            "route: no sink configured: set route.alertmanager_urls (STREAMPROC_ROUTE_"
            "ALERTMANAGER_URLS) or route.webhook_url (STREAMPROC_ROUTE_WEBHOOK_URL)"
        )
    if settings.route.group_id == settings.kafka.group_id:
        raise ConfigError(
            f"route.group_id {settings.route.group_id!r} is the workers' kafka.group_id: the "
            "router needs a consumer group of its own (STREAMPROC_ROUTE_GROUP_ID)"
        )
    setup_logging(settings.log)
    port = settings.metrics.port if args.metrics_port is None else args.metrics_port
    registry = CollectorRegistry()
    health = Health()
    server = HealthServer(health, registry, host=settings.metrics.host, port=port)
    with server, contextlib.suppress(KeyboardInterrupt):
        asyncio.run(route(settings, RouteMetrics(registry), health))
    return 0


def sinks(session: aiohttp.ClientSession, settings: RouteSettings) -> list[Sink]:
    """The configured sinks, in delivery order."""
    out: list[Sink] = []
    if settings.alertmanager_url_list:
        out.append(AlertmanagerSink.from_settings(session, settings))
    if settings.webhook_url:
        out.append(WebhookSink.from_settings(session, settings))
    return out


async def route(
    settings: Settings, metrics: RouteMetrics, health: Health, stop: asyncio.Event | None = None
) -> None:
    """Run the router until ``stop`` is set (by default: until SIGTERM or SIGINT)."""
    await check_connection(settings.kafka)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    options = aiokafka_options(settings.kafka)
    consumer = AIOKafkaConsumer(
        settings.topics.alerts,
        **options,
        group_id=settings.route.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(**options, acks="all")
    beating = asyncio.create_task(health.heartbeat())
    async with translated(settings.kafka), aiohttp.ClientSession() as session:
        await consumer.start()
        await producer.start()
        try:
            health.set_flags(partitions_assigned=True, state_recovered=True, consuming=True)
            log.info("routing %s to %s", settings.topics.alerts, ", ".join(settings.route.sinks))
            router = Router(
                settings.route,
                consumer,
                DeadLetters(producer, settings.topics.dead_letters),
                sinks(session, settings.route),
                metrics,
            )
            await router.run(stop)
        finally:
            beating.cancel()
            await consumer.stop()
            await producer.stop()
