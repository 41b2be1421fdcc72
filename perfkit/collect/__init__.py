"""Side channels (GPU counters, server metrics, host): see the telemetry issue."""
