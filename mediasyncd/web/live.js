// /api/v1/ws: typed status and event messages. Reconnects with backoff, asking for the events after the
// last one it saw, so nothing is missed across a reconnect.

export class Live {
  constructor({ onStatus, onEvent, onLink, onClosedUnauthorized }) {
    this.handlers = { onStatus, onEvent, onLink, onClosedUnauthorized };
    this.since = null;
    this.socket = null;
    this.retry = 0;
    this.timer = null;
  }

  connect() {
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
    const url = new URL("/api/v1/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (this.since !== null) url.searchParams.set("since", String(this.since));
    const socket = new WebSocket(url);
    this.socket = socket;
    this.handlers.onLink(this.retry ? "reconnecting" : "connecting");
    socket.addEventListener("open", () => {
      this.retry = 0;
      this.handlers.onLink("live");
    });
    socket.addEventListener("message", (message) => this.receive(message.data));
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.handlers.onLink("reconnecting");
      this.retry += 1;
      const wait = Math.min(15000, 500 * 2 ** Math.min(this.retry, 5)) * (0.75 + Math.random() / 2);
      this.timer = setTimeout(() => this.handlers.onClosedUnauthorized().then((ok) => ok && this.connect()), wait);
    });
  }

  receive(text) {
    const message = JSON.parse(text);
    if (message.type === "status") this.handlers.onStatus(message.data);
    else if (message.type === "event") {
      this.since = Math.max(this.since ?? 0, message.data.id);
      this.handlers.onEvent(message.data);
    }
  }

  close() {
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close();
  }
}
