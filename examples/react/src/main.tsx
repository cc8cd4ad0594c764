import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { TidewireClient } from '../../../client/index.ts';
import { App } from './App.tsx';
import './styles.css';

// One client per page, on the host that served it; the hooks share its connection and topic cache.
const client = new TidewireClient({ url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws` });
void client.connect();

const selector = new URLSearchParams(location.search).get('selector') ?? 'orders/**';
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App client={client} selector={selector} />
  </StrictMode>,
);
