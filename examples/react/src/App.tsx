import { useState } from 'react';
import type { TidewireClient } from '../../../client/index.ts';
import { useTopic, useTopics } from '../../../client/react.ts';

export function App({ client, selector }: { client: TidewireClient; selector: string }) {
  const { topics, live, state, error } = useTopics(client, selector);
  const [selected, setSelected] = useState<string | null>(null);

  return (
    <main>
      <header>
        <h1>Orders</h1>
        <span className="state" data-testid="state" data-live={live}>
          {live ? 'live' : state}
        </span>
      </header>
      {error && <p role="alert">{error.message}</p>}
      <p data-testid="count">
        {topics.size} topics match <code>{selector}</code>
      </p>
      <ul data-testid="orders">
        {[...topics].map(([path, order]) => (
          <li key={path} data-path={path} aria-current={path === selected || undefined}>
            <button type="button" onClick={() => setSelected(path)}>
              <code>{path}</code> {String(order.item)} × {String(order.qty)} — <strong data-field="status">{String(order.status)}</strong>
            </button>
          </li>
        ))}
      </ul>
      {selected && <OrderDetail client={client} path={selected} />}
    </main>
  );
}

function OrderDetail({ client, path }: { client: TidewireClient; path: string }) {
  const { value, version, live } = useTopic(client, path);
  return (
    <section data-testid="detail" aria-label={`Order ${path}`}>
      <h2>
        <code>{path}</code> <small data-testid="detail-version">v{version ?? '–'}</small>
      </h2>
      {value ? <pre data-testid="detail-value">{JSON.stringify(value, null, 2)}</pre> : <p data-testid="detail-gone">{live ? 'This order no longer exists.' : 'Loading…'}</p>}
    </section>
  );
}
