/**
 * The demo's `orders` table: rows as wide as a shop's real order rows (customer, contact, item, SKU,
 * prices, payment, addresses, warehouse, carrier, tracking number, notes, timestamps), so a change of one
 * field — the status, the quantity — is a delta of a small fraction of the full value, which is
 * what deltas are for (issue 18, item 3).
 */

interface Customer {
  readonly name: string;
  readonly email: string;
  readonly phone: string;
  readonly shipTo: string;
  readonly country: string;
  readonly payment: string;
}

/** customer_id n is CUSTOMERS[n - 1]. */
const CUSTOMERS: readonly Customer[] = [
  { name: 'Mina Okafor', email: 'mina.okafor@example.com', phone: '+49 30 5550 1234', shipTo: 'Marktstraße 14, 10115 Berlin', country: 'DE', payment: 'card •••• 4242' },
  { name: 'Jonas Berg', email: 'jonas.berg@example.com', phone: '+46 31 555 0199', shipTo: 'Storgatan 8, 411 38 Göteborg', country: 'SE', payment: 'invoice, 30 days' },
  { name: 'Lucía Ortega', email: 'lucia.ortega@example.com', phone: '+34 91 555 0142', shipTo: 'Calle de Alcalá 52, 28014 Madrid', country: 'ES', payment: 'card •••• 1881' },
  { name: 'Kenji Watanabe', email: 'kenji.watanabe@example.com', phone: '+81 3 5550 7788', shipTo: '3-1 Marunouchi, Chiyoda, Tokyo 100-0005', country: 'JP', payment: 'PayPal' },
  { name: 'Amara Nwosu', email: 'amara.nwosu@example.com', phone: '+353 21 555 0107', shipTo: '27 Harbour Road, Cork T12 X70A', country: 'IE', payment: 'card •••• 0005' },
];

const ITEMS: ReadonlyArray<{ readonly item: string; readonly sku: string; readonly price: number }> = [
  { item: 'espresso beans, 1 kg', sku: 'CB-ESP-1000', price: 24.9 },
  { item: 'oat milk, 6 x 1 l', sku: 'OM-6X1L', price: 14.5 },
  { item: 'burr grinder', sku: 'GR-BURR-02', price: 129 },
  { item: 'gooseneck kettle', sku: 'KT-GN-1L', price: 59 },
  { item: 'filter papers, 100', sku: 'FP-100', price: 6.9 },
  { item: 'stoneware mug', sku: 'MG-STN-350', price: 12 },
  { item: 'brew scale', sku: 'SC-01G-2KG', price: 34 },
];

const CARRIERS = ['DHL', 'UPS', 'PostNord', 'DPD'];
const WAREHOUSES = ['BER-1', 'GOT-2', 'MAD-1'];
const CHANNELS = ['web', 'ios app', 'android app', 'phone order'];
/** What shipping adds to an order's subtotal. */
export const SHIPPING_COST = '4.90';
const NOTES = [null, 'leave with a neighbour if nobody is home', 'gift: no invoice in the parcel', 'ring twice, the bell is quiet', null];

export const CUSTOMER_COUNT = CUSTOMERS.length;
export const STATUSES = ['new', 'paid', 'packed', 'shipped', 'delivered'];

/**
 * Orders 1 to KEPT_ORDER_IDS (each customer's first) are never deleted by the writer: the start
 * banner links one, so the link keeps answering while other orders come and go.
 */
export const KEPT_ORDER_IDS = CUSTOMERS.length;
/** The topic the start banner links: order 1 of customer 1, changed by the writer but never deleted. */
export const KEPT_TOPIC = 'orders/1/1';

export const CREATE_ORDERS = `
  CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_id int NOT NULL,
    customer_name text NOT NULL,
    email text NOT NULL,
    phone text NOT NULL,
    item text NOT NULL,
    sku text NOT NULL,
    qty int NOT NULL,
    unit_price numeric(10,2) NOT NULL,
    subtotal numeric(10,2) NOT NULL,
    shipping_cost numeric(10,2) NOT NULL,
    total numeric(10,2) NOT NULL,
    currency text NOT NULL,
    payment_method text NOT NULL,
    status text NOT NULL,
    shipping_method text NOT NULL,
    ship_to text NOT NULL,
    billing_address text NOT NULL,
    country text NOT NULL,
    warehouse text NOT NULL,
    carrier text NOT NULL,
    tracking_number text NOT NULL,
    channel text NOT NULL,
    notes text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
  )`;

export const ORDER_COLUMNS = [
  'customer_id', 'customer_name', 'email', 'phone', 'item', 'sku', 'qty', 'unit_price', 'subtotal', 'shipping_cost', 'total', 'currency', 'payment_method', 'status',
  'shipping_method', 'ship_to', 'billing_address', 'country', 'warehouse', 'carrier', 'tracking_number', 'channel', 'notes',
] as const;

/** One order's column values (ORDER_COLUMNS order) for customer `customerId`; `n` picks item, quantity, carrier and the rest. */
export function orderValues(customerId: number, n: number): unknown[] {
  const c = CUSTOMERS[(customerId - 1) % CUSTOMERS.length];
  const it = ITEMS[n % ITEMS.length];
  const qty = 1 + (n % 4);
  const subtotal = it.price * qty;
  const carrier = CARRIERS[n % CARRIERS.length];
  const tracking = `${carrier.slice(0, 2).toUpperCase()}${String(100_000_000 + ((n * 7_919_213) % 900_000_000))}${c.country}`;
  return [
    customerId, c.name, c.email, c.phone, it.item, it.sku, qty, it.price.toFixed(2), subtotal.toFixed(2), SHIPPING_COST, (subtotal + Number(SHIPPING_COST)).toFixed(2), 'EUR', c.payment, 'new',
    n % 3 === 0 ? 'express' : 'standard', c.shipTo, c.shipTo, c.country, WAREHOUSES[n % WAREHOUSES.length], carrier, tracking, CHANNELS[n % CHANNELS.length], NOTES[n % NOTES.length],
  ];
}

/** `INSERT INTO orders (...) VALUES ($1, ...), (...)` for `rows` rows. */
export function insertOrders(rows: number): string {
  const w = ORDER_COLUMNS.length;
  const tuples = Array.from({ length: rows }, (_, r) => `(${ORDER_COLUMNS.map((_, i) => `$${r * w + i + 1}`).join(', ')})`);
  return `INSERT INTO orders (${ORDER_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}`;
}
