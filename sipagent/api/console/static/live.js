// The one event stream of the console: an EventSource on /api/events.
// Pages subscribe to event types; when matching events arrive, the page's
// refresh runs once per ~200 ms burst (it re-fetches its snapshot: the
// events say *that* something changed, the snapshot says what is).
// The browser reconnects by itself and resumes with Last-Event-ID; after
// a gap every page refreshes anyway, so nothing missed stays missing.

const TYPES = [
  "call.started", "call.answered", "call.ended", "call.held", "call.resumed",
  "queue.joined", "queue.left",
  "offer.created", "offer.accepted", "offer.rejected", "offer.timeout", "offer.canceled",
  "bridge.started", "bridge.ended",
  "agent.state_changed", "agent.added", "agent.updated", "agent.removed",
  "wrapup.started", "wrapup.ended", "wrapup.disposition",
  "transfer.completed", "transfer.failed",
  "monitor.started", "monitor.mode_changed", "monitor.ended",
  "recording.started", "recording.paused", "recording.resumed", "recording.stopped",
];
const DEBOUNCE_MS = 200;
const RETRY_MS = 5000;

const subscriptions = new Set();
let source = null;
let dropped = false;
let retry = null;
let indicator = null;
let lost = () => {};

function matches(patterns, type) {
  return patterns.some((p) => p === type || (p.endsWith(".*") && type.startsWith(p.slice(0, -1))));
}

function deliver(type, data) {
  for (const sub of subscriptions) {
    if (!matches(sub.patterns, type)) continue;
    sub.events.push(data);
    if (sub.timer === null) {
      sub.timer = setTimeout(() => {
        const events = sub.events;
        sub.events = [];
        sub.timer = null;
        sub.refresh(events);
      }, DEBOUNCE_MS);
    }
  }
}

function show(state) {
  if (!indicator) return;
  indicator.textContent = state === "open" ? "● live" : "○ reconnecting";
  indicator.className = `live ${state}`;
}

function onEvent(event) {
  let data = null;
  try {
    data = JSON.parse(event.data);
  } catch {
    return;
  }
  deliver(event.type, data);
}

function open() {
  source = new EventSource("/api/events");
  for (const type of TYPES) source.addEventListener(type, onEvent);
  source.addEventListener("open", () => {
    show("open");
    if (dropped) {
      dropped = false;
      for (const sub of subscriptions) sub.refresh([]);
    }
  });
  source.addEventListener("error", () => {
    dropped = true;
    show("down");
    if (source.readyState === EventSource.CLOSED) {
      // Refused (401, 404 ...): EventSource gives up; ask whether the session
      // is still there, and try again a little later.
      source = null;
      lost();
      retry = setTimeout(() => { retry = null; if (!source) open(); }, RETRY_MS);
    }
  });
}

// `onLost` runs when the stream is refused (the app checks the session).
export function start(liveIndicator, onLost) {
  indicator = liveIndicator;
  lost = onLost || lost;
  if (!source && retry === null) open();
}

export function stop() {
  if (retry !== null) clearTimeout(retry);
  retry = null;
  if (source) source.close();
  source = null;
  if (indicator) indicator.textContent = "";
}

// refresh(events) runs after matching events (debounced); returns the
// function that ends the subscription.
export function subscribe(patterns, refresh) {
  const sub = {patterns, refresh, events: [], timer: null};
  subscriptions.add(sub);
  return () => {
    if (sub.timer !== null) clearTimeout(sub.timer);
    subscriptions.delete(sub);
  };
}

// One load at a time: a refresh asked for while one is under way runs once
// more after it (its answer might predate the change that asked).
export function singleFlight(load) {
  let running = false;
  let again = false;
  return async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await load();
      } while (again);
    } finally {
      running = false;
    }
  };
}
