CREATE TABLE orders (
  id serial PRIMARY KEY,
  customer_id int NOT NULL,
  item text NOT NULL,
  qty int NOT NULL,
  price numeric(10,2) NOT NULL,
  status text NOT NULL DEFAULT 'new',
  internal_notes text,
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO orders (customer_id, item, qty, price)
  SELECT 1 + i % 5, 'item ' || i, 1 + i % 4, 5 + i * 1.25 FROM generate_series(1, 20) AS i;
