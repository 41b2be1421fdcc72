"""The socket layer under the client and the ground-truth server: kernel receive stamps, stamped transports.

Neutral ground: it knows TCP sockets, their receive stamps and how to read them promptly, and nothing of
HTTP or LLM streams.  The client (:mod:`perfkit.client.fasthttp`) and the server that judges it
(:mod:`perfkit.sim.exact`) both name it explicitly, and it is tested on its own.
"""

from perfkit.net.compiled import compiled_module, send_each_available
from perfkit.net.readpath import READ_GAP_NS, READ_THREAD_MODES, ReadPath, realtime_permitted
from perfkit.net.stamps import ReadDelays, enable_rx_stamps, platform_stamps, recv_stamped
from perfkit.net.transport import StampedTransport, open_stamped

__all__ = [
    "READ_GAP_NS",
    "READ_THREAD_MODES",
    "ReadDelays",
    "ReadPath",
    "StampedTransport",
    "compiled_module",
    "enable_rx_stamps",
    "open_stamped",
    "platform_stamps",
    "realtime_permitted",
    "recv_stamped",
    "send_each_available",
]
