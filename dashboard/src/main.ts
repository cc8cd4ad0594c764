/**
 * The tidewire dashboard: one TidewireClient on this page's host, one subscription at a time for
 * the selector in the form (or `?selector=`), a live table of its topics (virtualised: all held,
 * those in view drawn), the update rate, and the bandwidth the deltas saved over live changes,
 * apart from the initial load.
 */
import { type ConnectionState, type Subscription, TidewireClient, TidewireClientError, type WebSocketConstructor } from '../../client/index.ts';
import { ByteMeter } from './byte-meter.ts';
import { formatBytes, formatCount, formatSaving } from './format.ts';
import { RateChart } from './rate-chart.ts';
import { RateSeries } from './rate-series.ts';
import { readSettings, rememberSelector } from './settings.ts';
import { TopicTable } from './topic-table.ts';
import './styles.css';

const CHART_SECONDS = 120;

function $<T extends Element>(testid: string): T {
  const el = document.querySelector<T>(`[data-testid="${testid}"]`);
  if (!el) throw new Error(`the page has no [data-testid="${testid}"]`);
  return el;
}

const settings = readSettings(location, sessionStorageOrNull(), history);
const ui = {
  pill: $<HTMLElement>('connection-state'),
  form: $<HTMLFormElement>('selector-form'),
  input: $<HTMLInputElement>('selector-input'),
  error: $<HTMLElement>('error'),
  active: $<HTMLElement>('active-selector'),
  topics: $<HTMLElement>('topic-count'),
  rate: $<HTMLElement>('update-rate'),
  initial: $<HTMLElement>('bytes-initial'),
  initialValues: $<HTMLElement>('initial-values'),
  delivered: $<HTMLElement>('bytes-delivered'),
  full: $<HTMLElement>('bytes-full'),
  saved: $<HTMLElement>('bytes-saved'),
  deltas: $<HTMLElement>('delta-count'),
};

let subscription: Subscription | null = null;
/** Set at the subscription's first `onLive`: updates before it are its initial values, not changes. */
let receivedInitial = false;
let subscriptionError: string | null = null;

const meter = new ByteMeter((path) => subscription?.values.get(path));
const client = new TidewireClient({
  url: settings.wsUrl,
  WebSocket: meter.wrap(globalThis.WebSocket as unknown as WebSocketConstructor),
});
const table = new TopicTable($('topic-table'), $('table-note'), {
  onDrawn: (n) => {
    ui.topics.textContent = formatCount(n);
    ui.topics.dataset.count = String(n);
  },
});
// For the browser console (and the browser tests): what the table holds, all of it, in its order.
(globalThis as { tidewireDashboard?: unknown }).tidewireDashboard = { rows: () => table.entries() };
const rates = new RateSeries(CHART_SECONDS);
const chart = new RateChart($('rate-chart'), $('chart-peak'), 'last 2 minutes');

function subscribe(selector: string): void {
  subscription?.unsubscribe();
  subscription = null;
  receivedInitial = false;
  subscriptionError = null;
  table.reset();
  ui.active.textContent = selector;
  ui.input.value = selector;
  showError(null);
  try {
    const sub = client.subscribe(selector, {
      onValue: (path, value) => {
        table.set(path, value);
        if (receivedInitial) rates.record(Date.now());
      },
      onRemoval: (path) => {
        table.remove(path);
        if (receivedInitial) rates.record(Date.now());
      },
      onProgress: () => showStatus(),
      onLive: () => {
        receivedInitial = true;
        showStatus();
      },
      onError: (err) => {
        subscriptionError = err.message;
        showError(err.message);
        showStatus();
      },
    });
    subscription = sub;
    rememberSelector(location, history, selector);
  } catch (err) {
    if (!(err instanceof TidewireClientError)) throw err;
    subscriptionError = err.message;
    showError(err.message);
  }
  showStatus();
}

const LABELS: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
};

/** A large subscription arriving in pages (docs/PROTOCOL.md, "Large subscriptions"). */
function loadingText(p: { sent: number; total: number }): string {
  return `Loading ${p.sent.toLocaleString('en-US')} of ${p.total.toLocaleString('en-US')}`;
}

function showStatus(): void {
  const state = client.state;
  const live = state === 'open' && subscription?.live === true;
  let text = LABELS[state];
  if (live) text = 'Live';
  else if (state === 'open' && subscriptionError) text = 'Refused';
  else if (state === 'open' && subscription?.progress) text = loadingText(subscription.progress);
  else if (state === 'open' && subscription) text = 'Syncing…';
  ui.pill.dataset.state = state;
  ui.pill.dataset.live = String(live);
  ui.pill.querySelector('.pill-text')!.textContent = text;
  ui.pill.title = settings.wsUrl.replace(/access_token=[^&]*/, 'access_token=…');
}

function showError(message: string | null): void {
  ui.error.hidden = message === null;
  ui.error.textContent = message ?? '';
}

function tick(): void {
  const now = Date.now();
  ui.rate.textContent = formatCount(rates.lastSecond(now));
  chart.draw(rates.values(now));
  const { initial, initialValues, delivered, full, deltas } = meter.totals;
  ui.initial.textContent = formatBytes(initial);
  ui.initial.dataset.bytes = String(initial);
  ui.initialValues.textContent = `${formatCount(initialValues)} ${initialValues === 1 ? 'value' : 'values'}`;
  ui.delivered.textContent = formatBytes(delivered);
  ui.delivered.dataset.bytes = String(delivered);
  ui.full.textContent = formatBytes(full);
  ui.full.dataset.bytes = String(full);
  ui.saved.textContent = formatSaving(delivered, full);
  // Over live changes only: initial values cost the same either way, and are counted apart.
  ui.deltas.textContent = `${formatCount(deltas)} ${deltas === 1 ? 'delta' : 'deltas'} so far`;
  showStatus();
}

function sessionStorageOrNull(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

ui.form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const selector = ui.input.value.trim();
  if (selector && (selector !== subscription?.selector || subscription.state === 'failed')) subscribe(selector);
});
client.onState(showStatus);
client.onError((err) => {
  // Connection failures are shown by the status pill and retried; other errors deserve a line.
  if (err.code !== 'CONNECTION_FAILED') showError(err.message);
});

subscribe(settings.selector);
tick();
setInterval(tick, 1000);
void client.connect();
