"""A sink by its config's `type`: the built-in ones by name, third-party ones from entry points."""

from __future__ import annotations

from mediasyncd.config_sinks import SinkConfig
from mediasyncd.sinks.base import Sink


def make_sink(config: SinkConfig) -> Sink:
    if config.type == "postgresql":
        from mediasyncd.sinks.postgres import PostgresSink

        return PostgresSink(config)
    if config.type == "webhook":
        from mediasyncd.sinks.webhook import WebhookSink

        return WebhookSink(config)
    from mediasyncd.sinks.plugins import PluginSink

    return PluginSink(config)
